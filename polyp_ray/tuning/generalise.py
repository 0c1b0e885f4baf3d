"""After the search, the Ray side of the generalisation scoring (polyp_ray/generalisation.py holds the
rest): the test split and every external test set put into the object store, and the winner, the family
bests and the ensemble members predicted by Ray tasks with the trials' own resources (GPUs where the
trials had them). A member whose checkpoint fails is reported and left out, and the search's other
results stand. The ensemble's members are kept in the experiment for ``predict --ensemble``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import ray

from polyp_ray.config import JobConfig, TrialConfig
from polyp_ray.data.dataset import PreparedData, SplitArrays
from polyp_ray.data.external import ExternalSet, external_split
from polyp_ray.errors import one_line
from polyp_ray.evaluation import write_json
from polyp_ray.experiment import ExperimentLayout
from polyp_ray.gallery import BEST, WORST, WORST_EXTERNAL, forget, winner_cases, write_gallery
from polyp_ray.generalisation import (
    TEST,
    Probs,
    Row,
    build_rows,
    choose,
    console_lines,
    generalisation_body,
    score_row,
    scored_ids,
    source_tests,
)
from polyp_ray.models.saving import export_archive, share_if_identical
from polyp_ray.tuning.finish import load_checkpoint


def generalise(table: pd.DataFrame, checkpoints: dict[str, Any], job: JobConfig,
               prepared: dict[int, PreparedData], external: dict[str, ExternalSet],
               layout: ExperimentLayout) -> dict | None:
    """Score the winner, the family bests and the ensemble on test and external sets; write the results."""
    ranked = [t for t in scored_ids(table) if t in checkpoints]
    if not ranked:
        return None
    configs = {t: layout.trial(t).read_config() for t in ranked}
    chosen = choose(ranked, configs, job.ensemble_k)
    sizes = sorted({configs[t].image_size for t in chosen.needed})
    sets = {TEST: {s: prepared[s].splits[TEST] for s in sizes}}
    parts = {s: source_tests(prepared[s].splits[TEST]) for s in sizes}  # several sources: each one's test too
    sets.update({name: {s: parts[s][name] for s in sizes} for name in parts[sizes[0]]})
    sets.update({name: {s: external_split(ext, s, job.trial.data) for s in sizes} for name, ext in external.items()})
    truths = {name: by_size[sizes[0]].truths for name, by_size in sets.items()}
    set_refs = {name: {s: ray.put(split) for s, split in by_size.items()} for name, by_size in sets.items()}
    print(f"scoring the winner, {len(chosen.families)} family best(s)"
          f"{f' and the top-{len(chosen.members)} ensemble' if chosen.members else ''} on {', '.join(sets)}"
          f"{' (with flip TTA)' if job.tta else ''}", flush=True)
    probs = _predict_all(chosen.needed, checkpoints, configs, set_refs, job)
    rows = build_rows(chosen, configs, probs, job.tta)
    for row in rows:
        score_row(row, probs, truths)
    described = {name: {"n_images": len(t or []), **(external[name].summary() if name in external else {}),
                        **({"part_of": TEST} if name in parts[sizes[0]] else {})} for name, t in truths.items()}
    body = generalisation_body(rows, described, job)
    write_json(layout.generalisation, body)
    _keep_members([t for t in chosen.members if t in probs], checkpoints, configs, layout, job.tta)
    _write_gallery(rows, configs, sets, probs, list(external), layout)
    print("\n".join(console_lines(body)), flush=True)
    return body


def _write_gallery(rows: list[Row], configs: dict[str, TrialConfig], sets: dict[str, dict[int, SplitArrays]],
                   probs: Probs, external: list[str], layout: ExperimentLayout) -> None:
    """The report's gallery of the winner (its test images, and its worst on each external set), from the
    probabilities in hand: the report then starts no TensorFlow. A failure here costs only that; the
    report predicts the test gallery itself."""
    forget(layout.external_galleries())
    winner = next((row for row in rows if row.kind == "winner" and not row.tta), None)
    if winner is None:
        return
    trial_id = winner.trial_ids[0]
    config = configs[trial_id]
    shown = [(TEST, layout.gallery, WORST, BEST)] + [(name, layout.external_gallery(k), WORST_EXTERNAL, 0)
                                                     for k, name in enumerate(external)]
    try:
        for name, files, worst, best in shown:
            split = sets[name][config.image_size]
            cases = winner_cases(list(split.stems), winner.scores[name].per_image, split.images, split.masks,
                                 probs[trial_id][name][False], config.threshold, worst, best)
            write_gallery(files, trial_id, cases, name)
    except Exception as err:  # noqa: BLE001 - see above
        print(f"warning: the winner's gallery was not written ({one_line(err)}); the report predicts it",
              file=sys.stderr, flush=True)


def _predict_all(needed: list[str], checkpoints: dict[str, Any], configs: dict[str, TrialConfig],
                 set_refs: dict[str, dict[int, Any]], job: JobConfig) -> Probs:
    """trial id -> set -> {tta: probabilities at the trial's own size}; failed trials are left out.

    The models are shared out over at most ``max_concurrent`` tasks, each loading its models one after
    another: a task's start (a process importing TensorFlow) costs more than predicting a test split.
    """
    task = ray.remote(_predict_sets).options(num_cpus=job.resources.cpu, num_gpus=job.resources.gpu)
    chunks = [needed[i::job.max_concurrent] for i in range(min(job.max_concurrent, len(needed)))]
    pending = []
    for chunk in chunks:
        members = [(t, checkpoints[t], configs[t], {name: refs[configs[t].image_size]
                                                    for name, refs in set_refs.items()}) for t in chunk]
        pending.append((chunk, task.remote(members, job.tta)))
    probs: dict[str, Any] = {}
    for chunk, ref in pending:
        try:
            done, failures = ray.get(ref)
        except Exception as err:  # noqa: BLE001 - one task's failure must not lose the others
            done, failures = {}, {t: one_line(err) for t in chunk}
        probs.update(done)
        for trial_id, message in failures.items():
            print(f"warning: trial {trial_id}: scoring on the test and external sets failed: {message}",
                  file=sys.stderr, flush=True)
    return probs


def _predict_sets(members: list[tuple[str, Any, TrialConfig, dict[str, Any]]], tta: bool
                  ) -> tuple[dict[str, dict[str, dict[bool, np.ndarray]]], dict[str, str]]:
    """Each member's probabilities on every set (and with flip TTA), and why any member failed."""
    from polyp_ray.ensemble import member_probs
    from polyp_ray.runtime import configure_tensorflow

    done: dict[str, dict[str, dict[bool, np.ndarray]]] = {}
    failures: dict[str, str] = {}
    for trial_id, checkpoint, config, split_refs in members:
        try:
            configure_tensorflow("float32", config.seed, config.cpu_threads)
            model = load_checkpoint(checkpoint)
            batch = config.batch_size
            out: dict[str, dict[bool, np.ndarray]] = {}
            for name, ref in split_refs.items():
                split: SplitArrays = ray.get(ref)
                out[name] = {False: member_probs(model, split.images, False, batch)}
                if tta:
                    out[name][True] = member_probs(model, split.images, True, batch)
            done[trial_id] = out
        except Exception as err:  # noqa: BLE001 - reported per member by the driver
            failures[trial_id] = one_line(err)
    return done, failures


def _keep_members(members: list[str], checkpoints: dict[str, Any], configs: dict[str, TrialConfig],
                  layout: ExperimentLayout, tta: bool) -> None:
    """The ensemble's models, best first, for ``predict --ensemble K`` (K up to len(members))."""
    shutil.rmtree(layout.ensemble, ignore_errors=True)
    if len(members) < 2:
        return
    layout.ensemble.mkdir(parents=True)
    listed = []
    for rank, trial_id in enumerate(members, 1):
        target = layout.ensemble_member(rank, trial_id)
        with checkpoints[trial_id].as_directory() as source:
            export_archive(Path(source), target)
        share_if_identical(target, layout.best_model)
        listed.append({"trial_id": trial_id, "file": target.name, "image_size": configs[trial_id].image_size})
    write_json(layout.ensemble_manifest, {"threshold": configs[members[0]].threshold, "tta": tta,
                                          "members": listed})
