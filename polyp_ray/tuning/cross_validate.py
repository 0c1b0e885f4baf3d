"""After the search, the Ray side of the job's ``cross_validation`` (polyp_ray/cross_validation.py holds
the rest): the top-k configurations by validation retrained on every grouped fold of the train+val pool,
one Ray task per (configuration, fold) with the trials' own resources, each scored on its held-out fold
and predicting the test split. A failed task marks its configuration, and the others' results stand.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import ray

from polyp_ray.config import JobConfig, TrialConfig
from polyp_ray.cross_validation import (
    config_entry,
    console_lines,
    cross_validation_body,
    failed_entry,
    kept_entries,
)
from polyp_ray.data.dataset import Described, PreparedData, prepare_data
from polyp_ray.data.folds import fold_splits
from polyp_ray.errors import one_line
from polyp_ray.evaluation import write_json
from polyp_ray.experiment import ExperimentLayout
from polyp_ray.generalisation import scored_ids
from polyp_ray.tuning.trainable import score_key


def plan_folds(job: JobConfig, described: Described, largest_batch: int) -> list[dict[str, list[str]]]:
    """The folds the job's cross_validation will train on; checked before the search (a ConfigError line)."""
    if job.cross_validation is None:
        return []
    info = described.info
    return fold_splits(info.split, info.groups, job.cross_validation.folds, info.split_seed, largest_batch)


def cross_validate(table: pd.DataFrame, job: JobConfig, described: Described, folds: list[dict[str, list[str]]],
                   layout: ExperimentLayout) -> dict[str, Any] | None:
    """Retrain the top-k trials' configurations on each fold; write cross_validation.json and return it."""
    if job.cross_validation is None or not folds:
        return None
    top = candidates(table, job.metric, job.cross_validation.top_k, layout)
    if not top:
        return None
    earlier = kept_entries([_read(layout.cross_validation), _read(layout.cross_validation_progress)], folds, top)
    todo = [t for t, _ in top if t not in earlier]
    configs = {t: dataclasses.replace(layout.trial(t).read_config(), evaluate_test=False,
                                      cpu_threads=max(1, int(job.resources.cpu))) for t in todo}
    sizes = sorted({c.image_size for c in configs.values()})
    data = [{s: _fold_data(job, described, fold, s) for s in sizes} for fold in folds]
    refs = [{s: ray.put(d) for s, d in by_size.items()} for by_size in data]
    kept = f"; {len(earlier)} kept from the earlier run" if earlier else ""
    print(f"cross-validation: the top {len(top)} configurations by validation, each retrained on "
          f"{len(folds)} grouped folds ({len(todo) * len(folds)} runs of {job.epochs} epoch"
          f"{'' if job.epochs == 1 else 's'}{kept})", flush=True)
    task = ray.remote(_train_fold).options(num_cpus=job.resources.cpu, num_gpus=job.resources.gpu, max_retries=0)
    pending = {t: [task.remote(configs[t], refs[k][configs[t].image_size], job.metric) for k in range(len(folds))]
               for t in todo}
    entries = []
    for trial_id, validation in top:
        if trial_id in earlier:
            entries.append(earlier[trial_id])
            print(f"cross-validation: {len(entries)}/{len(top)} trial {trial_id}: fold mean "
                  f"{entries[-1]['mean']:.4f} (validation {validation:.4f}; kept from the earlier run)", flush=True)
            continue
        config = configs[trial_id]
        try:
            results = ray.get(pending[trial_id])
        except Exception as err:  # noqa: BLE001 - one configuration's failure must not lose the others'
            message = one_line(err)
            print(f"warning: trial {trial_id}: cross-validation failed: {message}", file=sys.stderr, flush=True)
            entries.append(failed_entry(trial_id, validation, message))
            continue
        test = data[0][config.image_size].splits["test"]
        entries.append(config_entry(trial_id, validation, [s for s, _ in results], [p for _, p in results],
                                    test, config.threshold))
        # Minutes can pass between configurations on a small machine: say each as it is done, and keep it,
        # so a search resumed after a crash here retrains only what was not finished.
        print(f"cross-validation: {len(entries)}/{len(top)} trial {trial_id}: fold mean "
              f"{entries[-1]['mean']:.4f} (validation {validation:.4f})", flush=True)
        write_json(layout.cross_validation_progress,
                   cross_validation_body(entries, folds, job.metric, job.mode, described.info.split_seed))
    body = cross_validation_body(entries, folds, job.metric, job.mode, described.info.split_seed)
    write_json(layout.cross_validation, body)
    layout.cross_validation_progress.unlink(missing_ok=True)
    print("\n".join(console_lines(body)), flush=True)
    return body


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def candidates(table: pd.DataFrame, metric: str, top_k: int, layout: ExperimentLayout) -> list[tuple[str, float]]:
    """(trial id, best validation score) of the top ``top_k``, best first, among the trials the search could
    ship (scored on test: generalisation.scored_ids), so the first is the search's own winner (best/) and
    "the pick changed" compares against what was shipped, even when the top trial's checkpoint failed."""
    score = score_key(metric)
    if score not in table:
        return []
    shippable = set(scored_ids(table))
    ranked = table.dropna(subset=[score])
    return [(str(t), float(v)) for t, v in zip(ranked["trial_id"], ranked[score], strict=True)
            if str(t) in shippable and layout.trial(str(t)).config.is_file()][:top_k]


def _fold_data(job: JobConfig, described: Described, fold: dict[str, list[str]], size: int) -> PreparedData:
    """The fold as a dataset: its training part as ``train``, its held-out part as ``val`` (with the
    original-size masks validation is scored against), the search's test split as ``test``."""
    info = dataclasses.replace(described.info, split=fold)
    return prepare_data(job.trial.data, size, Described(info, described.pairs, described.checked))


class _NoCheckpoints:
    """A fold model is trained once and scored as it ends: nothing to resume from, nothing to keep."""

    def restore(self) -> Path | None:
        return None

    def report(self, metrics: dict[str, Any], checkpoint_dir: Path) -> None:
        pass


def _train_fold(config: TrialConfig, data: PreparedData, metric: str) -> tuple[float, np.ndarray]:
    """One fold model (in a Ray worker): the job's metric on its held-out part after the full epochs, and
    its probabilities on the test split."""
    from polyp_ray.evaluation import predict_probs
    from polyp_ray.trial import run_trial

    # Ranked by "epoch", run_trial's best epoch is the last: the model scored is the one the full budget
    # made, and the held-out part picks no epoch (its score would be optimistic if it did).
    result = run_trial(config, _NoCheckpoints(), data, metric="epoch", mode="max")
    probs = predict_probs(result.model, data.splits["test"].images, config.batch_size)
    return float(result.history[-1][metric]), probs
