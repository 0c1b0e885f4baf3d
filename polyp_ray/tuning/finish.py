"""After the trials: every trial's best checkpoint scored once on the test split (Ray tasks with the
trials' own resources), trials.csv, and the winner copied to ``best/``.

A failure while scoring one trial marks that trial (``test_error``) and the rest carry on: the table,
the winner and the report are still written.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import ray

from polyp_ray.config import JobConfig, TrialConfig, trial_config_for
from polyp_ray.data.dataset import PreparedData
from polyp_ray.errors import PolypRayError, one_line
from polyp_ray.evaluation import VAL_PER_IMAGE, image_scores, write_test_outputs
from polyp_ray.experiment import ExperimentLayout, TrialFiles, TuneTrialFiles
from polyp_ray.metrics import METRICS, job_metrics
from polyp_ray.models.saving import checkpoint_model, export_archive, load_model
from polyp_ray.tuning.budget import NOT_STARTED
from polyp_ray.tuning.proposals import proposed_by
from polyp_ray.tuning.trainable import score_key


def summarise_trials(results, job: JobConfig, prepared: dict[int, PreparedData], refs: dict[int, Any],
                     layout: ExperimentLayout) -> tuple[pd.DataFrame, dict[str, Any]]:
    """trials.csv's table, best validation first, and each trial's best checkpoint by trial id."""
    rows: dict[str, dict[str, Any]] = {}
    checkpoints: dict[str, Any] = {}
    pending: dict[str, tuple[Any, Any]] = {}
    task = ray.remote(_score_checkpoint).options(num_cpus=job.resources.cpu, num_gpus=job.resources.gpu)
    for result in results:
        row, best = _trial_row(result, job)
        rows[row["trial_id"]] = row
        if best is not None:
            checkpoints[row["trial_id"]] = best[0]
            config = trial_config_for(job, result.config or {}, cpu_threads=max(1, int(job.resources.cpu)))
            out = layout.trial(row["trial_id"])
            pending[row["trial_id"]] = (config, _test_scores(task, best, config, refs, out, row["trial_id"]))
    for trial_id, (config, scores) in pending.items():
        try:
            body = _collect(scores, config, prepared[config.image_size], layout.trial(trial_id))
        except Exception as err:  # noqa: BLE001 - one trial's failure must not lose the others' results
            message = one_line(err)
            print(f"warning: trial {trial_id}: scoring its checkpoint on the test split failed: {message}",
                  file=sys.stderr, flush=True)
            rows[trial_id]["test_error"] = message
            continue
        summary = body["summary"]
        rows[trial_id].update({f"test_{name}": summary[name] for name in METRICS if name in summary},
                              n_params=body["n_params"])
    if not rows:
        raise PolypRayError("the search produced no trials")
    table = pd.DataFrame(list(rows.values()))
    try:
        table["proposed_by"] = proposed_by(table, job, layout)
    except Exception as err:  # noqa: BLE001 - a label: a study that cannot be read back costs only that
        print(f"warning: which trials the sampler proposed is not known: {one_line(err)}", file=sys.stderr)
    if f"best_{job.metric}" not in table:  # no trial reported an epoch: nothing to rank, nothing to test
        table.to_csv(layout.trials_table, index=False)
        within = f" within time_budget_s ({job.time_budget_s:g} s)" if job.time_budget_s else ""
        raise PolypRayError(f"no trial trained an epoch{within}: nothing to rank ({len(table)} trials listed in "
                            f"{layout.trials_table})")
    table = table.sort_values(f"best_{job.metric}", ascending=job.mode == "min", na_position="last")
    table.to_csv(layout.trials_table, index=False)
    # The winner is the best by validation among the trials whose checkpoint could be scored (loaded).
    scored = table[table["test_error"].isna()] if "test_error" in table else table
    if len(scored):
        _keep_winner(scored.iloc[0]["trial_id"], checkpoints, layout)
    return table, checkpoints


def _trial_row(result, job: JobConfig) -> tuple[dict[str, Any], tuple[Any, dict] | None]:
    history = own_reports(result)
    trial_id = own_trial_id(result, history)
    last = _own_last(result, trial_id, history)
    epochs_run = int(history["epoch"].max()) if "epoch" in history and len(history) else 0
    wall = float(last.get("time_total_s", 0.0))
    row: dict[str, Any] = {
        "trial_id": trial_id, **(result.config or {}),
        "status": _status(result, job, epochs_run), "epochs_run": epochs_run,
        "stopped_early": result.error is None and 0 < epochs_run < job.epochs,
        "wall_s": wall, "cpu": job.resources.cpu, "gpu": job.resources.gpu,
        "cpu_hours": wall * job.resources.cpu / 3600, "gpu_hours": wall * job.resources.gpu / 3600,
        "node_ip": last.get("node_ip"), "node_id": last.get("node_id"), "trial_dir": result.path,
    }
    if last.get("lineage"):  # PBT: "donor@epoch" for each clone, oldest first (trainable.py)
        row["lineage"] = last["lineage"]
    best = best_checkpoint(result, job)
    if best is not None:
        metrics = best[1]
        row.update(best_epoch=metrics.get("epoch"), checkpoint=best[0].path)
        # The best epoch's scores (the checkpoint tested and exported); the job's own column is the trial's
        # score as the reporter handed it to ASHA and TPE (the best so far at that epoch: the same number).
        row.update({f"best_{key}": metrics[key] for key in job_metrics() if key in metrics})
        score = score_key(job.metric)
        row[score] = metrics.get(score, metrics.get(job.metric))
    return row, best


def own_reports(result) -> pd.DataFrame:
    """The trial's own reports, oldest first. Tune's Result reads them from the trial's result.json, which
    a trial restarted in a new process (PBT's exploit) can leave holding only that process's rows, or none:
    the artifacts synced from the worker's folder replace the driver's file (seen in CI). The driver's own
    progress.csv keeps every row, so the longer of the two is taken; where Tune handed an empty frame,
    result.json is read again here, a torn line skipped."""
    history = result.metrics_dataframe if result.metrics_dataframe is not None else pd.DataFrame()
    files = TuneTrialFiles(Path(result.path))
    candidates = [history]
    if files.progress.is_file() and files.progress.stat().st_size:
        try:
            candidates.append(pd.read_csv(files.progress, dtype={"trial_id": str}))
        except (ValueError, pd.errors.ParserError):
            pass
    if not len(history) and files.result.is_file():  # Tune's reading failed as a whole (one bad line)
        rows = []
        for line in files.result.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
        candidates.append(pd.DataFrame(rows))
    return max(candidates, key=len)  # the first of equals: Tune's own reading


def own_trial_id(result, history: pd.DataFrame) -> str:
    """The trial's own id. Not ``result.metrics["trial_id"]``: a trial restored from another trial's
    checkpoint (PBT's clone) carries that checkpoint's metrics, donor's id included, until it reports
    again, and a clone of a donor's last epoch never does; keyed by it, the clone's row replaced the donor's."""
    if "trial_id" in history and len(history):
        return str(history["trial_id"].iloc[0])
    return (result.metrics or {}).get("trial_id") or Path(result.path).name


def _own_last(result, trial_id: str, history: pd.DataFrame) -> dict[str, Any]:
    """The trial's last report. A clone that never reported after its restore holds the donor's metrics
    instead: then its own last report, with the clone added to its lineage by trainable.py's rule."""
    last = result.metrics or {}
    if last.get("trial_id") in (None, trial_id):
        return last
    own = {k: v for k, v in history.iloc[-1].items() if not (isinstance(v, float) and math.isnan(v))} \
        if len(history) else {}
    lineage = [step for step in str(last.get("lineage") or "").split(";") if step]
    own["lineage"] = ";".join([*lineage, f"{last['trial_id']}@{int(last.get('epoch', 0))}"])
    return own


def _status(result, job: JobConfig, epochs_run: int) -> str:
    """ERROR, TERMINATED, or NOT_STARTED: a trial the time budget stopped before its first epoch is not a result."""
    if result.error:
        return "ERROR"
    return NOT_STARTED if epochs_run == 0 and job.time_budget_s is not None else "TERMINATED"


def best_checkpoint(result, job: JobConfig) -> tuple[Any, dict] | None:
    """Tune's best kept checkpoint by the job's metric, with the metrics of its epoch."""
    try:
        checkpoint = result.get_best_checkpoint(job.metric, job.mode)
    except (RuntimeError, ValueError):  # no checkpoint reported the metric
        return None
    if checkpoint is None:
        return None
    metrics: dict = next((m for c, m in result.best_checkpoints or [] if c.path == checkpoint.path), {})
    return checkpoint, metrics


def _test_scores(task, best, config: TrialConfig, refs: dict, out: TrialFiles, trial_id: str):
    """A finished evaluation from an earlier run of this experiment, or a Ray task scoring the checkpoint
    on the cluster with the trial's own resources (GPUs, where the trials had them)."""
    checkpoint, metrics = best
    epoch = int(metrics.get("epoch", 0))
    out.write_config(config)
    existing = out.test_metrics
    if existing.exists():
        earlier = json.loads(existing.read_text())
        if earlier.get("checkpoint_epoch") == epoch and earlier.get("protocol"):
            return earlier
    return task.remote(checkpoint, config, refs[config.image_size], trial_id, epoch)


def _score_checkpoint(checkpoint, config: TrialConfig, data: PreparedData, trial_id: str, epoch: int):
    from polyp_ray.runtime import configure_tensorflow
    from polyp_ray.trial import score_test

    configure_tensorflow("float32", config.seed, config.cpu_threads)
    model = load_checkpoint(checkpoint)
    body, probs = score_test(model, config, data, trial_id, epoch)
    # The checkpoint's per-image validation scores too (a forward pass over a small split): the report's
    # "Is the pick real?" resamples them.
    body[VAL_PER_IMAGE] = image_scores(model, data.splits["val"], config.threshold, config.batch_size)
    return body, probs


def load_checkpoint(checkpoint) -> Any:
    """The Keras model of a Tune checkpoint (in a Ray task: on whichever node holds or fetches it)."""
    with checkpoint.as_directory() as folder:
        return load_model(checkpoint_model(Path(folder)))


def _collect(scores, config: TrialConfig, data: PreparedData, out: TrialFiles) -> dict[str, Any]:
    if isinstance(scores, dict):  # evaluated by an earlier run of this experiment
        return scores
    body, probs = ray.get(scores)
    write_test_outputs(out, body, data.splits["test"], probs, config.threshold)
    return body


def _keep_winner(trial_id: str, checkpoints: dict[str, Any], layout: ExperimentLayout) -> None:
    checkpoint = checkpoints.get(trial_id)
    if checkpoint is None:
        return
    layout.best.mkdir(exist_ok=True)
    with checkpoint.as_directory() as folder:
        export_archive(Path(folder), layout.best_model)
    shutil.copyfile(layout.trial(trial_id).config, layout.best_config)

