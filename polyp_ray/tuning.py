"""The search itself: Tuner + OptunaSearch (seeded TPE) + ASHA over ``run_trial``, then the test-split
evaluation of every trial's best checkpoint and the experiment's summary files.

The dataset is decoded once per image size here, on the driver, and put into Ray's object store:
every trial on every node reads the same arrays, with no shared filesystem and no second decode.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import ray
import yaml
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.optuna import OptunaSearch

from polyp_ray.config import JobConfig, to_dict
from polyp_ray.data.dataset import PreparedData, describe_dataset, prepare_data
from polyp_ray.errors import ConfigError, PolypRayError
from polyp_ray.models.saving import checkpoint_model, export_archive, load_model
from polyp_ray.search import trial_config_for
from polyp_ray.searchspace import SearchSpace
from polyp_ray.storage import locate

OURS = "polyp_ray"  # our subfolder of the experiment folder (docs/experiment-layout.md)


def run_search(job: JobConfig, job_path: Path, space: SearchSpace, space_path: Path, args: argparse.Namespace) -> int:
    from polyp_ray.search import command_line

    info, _ = describe_dataset(job.trial.data)  # refuses a bad dataset before anything is written
    experiment = locate(job.storage_path, job.name, args.name, args.resume)
    if args.resume and not tune.Tuner.can_restore(experiment.uri):
        raise ConfigError(f"--resume: {experiment.uri} holds no experiment to resume")
    if not args.resume and experiment.exists():
        raise ConfigError(f"--name: {experiment.uri} already exists; pass --resume to finish it, or another --name")
    _init_ray(args.address)
    if not args.address:
        _check_local_resources(job)
    prepared = {size: prepare_data(job.trial.data, size) for size in space.possible("image_size", job.trial.image_size)}
    refs = {size: ray.put(data) for size, data in prepared.items()}
    trainable = _trainable(job, refs)
    if args.resume:
        print(f"resuming {experiment.uri}", flush=True)
        tuner = tune.Tuner.restore(experiment.uri, trainable=trainable, resume_errored=True)
    else:
        tuner = _new_tuner(job, space, trainable, experiment.name, experiment.storage)
    ours = experiment.local / OURS
    started = time.time()
    if not args.resume:
        ours.mkdir(parents=True, exist_ok=True)
        _write_provenance(ours, job, job_path, space_path, info, command_line())
    results = tuner.fit()
    print(f"search finished in {time.time() - started:.0f} s; "
          "evaluating each trial's best checkpoint on the test split", flush=True)
    table = summarise_trials(results, job, prepared, refs, ours)
    _print_table(table)
    experiment.publish(OURS)
    experiment.mirror_results()
    report = None if args.no_report else _write_report(experiment.local)
    print(f"experiment: {experiment.uri}")
    if report:
        print(f"report: {report}")
    return 0


def _init_ray(address: str | None) -> None:
    # Tune warns when checkpoints of short epochs trigger frequent state snapshots; expected here.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        ray.init(include_dashboard=False, log_to_driver=True)


def _check_local_resources(job: JobConfig) -> None:
    """A local Ray cannot grow: a trial that asks for more than this machine has would wait forever.
    (On a cluster, --address, the autoscaler may still add the nodes, so nothing is checked there.)"""
    have = ray.cluster_resources()
    for key, name in (("cpu", "CPU"), ("gpu", "GPU")):
        want = getattr(job.resources, key)
        if want > have.get(name, 0):
            raise ConfigError(f"resources.{key}: each trial asks for {want:g} {name} but this machine has "
                              f"{have.get(name, 0):g}; lower it (--set resources.{key}=...) or attach to a "
                              "cluster with --address")


def _trainable(job: JobConfig, refs: dict[int, ray.ObjectRef]):
    base = to_dict(job.trial)
    resources = {"cpu": job.resources.cpu, "gpu": job.resources.gpu}
    with_data = tune.with_parameters(tune_trial, base=base, max_epochs=job.max_epochs, refs=refs,
                                     resources=resources)
    return tune.with_resources(with_data, resources)


def tune_trial(params: dict[str, Any], base: dict[str, Any], max_epochs: int, refs: dict, resources: dict) -> None:
    """One Tune trial: the job's fixed settings + the sampled ``params``, trained by ``run_trial``."""
    from polyp_ray.config import trial_from_dict
    from polyp_ray.trial import run_trial

    merged = {**base, **params, "epochs": max_epochs, "evaluate_test": False,
              "cpu_threads": max(1, int(resources["cpu"]))}
    config = trial_from_dict(merged, "trial params")
    data: PreparedData = ray.get(refs[config.image_size])
    run_trial(config, TuneReporter(resources), data)


class TuneReporter:
    """``tune.report`` with a checkpoint each epoch; a restarted trial resumes from its last one."""

    def __init__(self, resources: dict[str, float]) -> None:
        self.resources = resources

    def restore(self) -> Path | None:
        checkpoint = tune.get_checkpoint()
        if checkpoint is None:
            return None
        return Path(checkpoint.to_directory(tempfile.mkdtemp(prefix="polyp_ray_restore_")))

    def report(self, metrics: dict[str, Any], checkpoint_dir: Path) -> None:
        # What the trial held and where it ran, for the report's CPU/GPU-hours and node placement.
        held = {"cpu": self.resources["cpu"], "gpu": self.resources["gpu"],
                "node_id": ray.get_runtime_context().get_node_id()}
        tune.report({**metrics, **held}, checkpoint=tune.Checkpoint.from_directory(str(checkpoint_dir)))


def _new_tuner(job: JobConfig, space: SearchSpace, trainable, name: str, storage: str) -> tune.Tuner:
    import optuna

    searcher = OptunaSearch(
        space.define_by_run,
        metric=job.metric,
        mode=job.mode,
        sampler=optuna.samplers.TPESampler(seed=job.seed, n_startup_trials=min(10, max(2, job.num_samples // 3))),
        points_to_evaluate=job.points_to_evaluate or None,
    )
    scheduler = ASHAScheduler(time_attr="epoch", max_t=job.max_epochs, grace_period=job.grace_period,
                              reduction_factor=job.reduction_factor)
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            metric=job.metric,
            mode=job.mode,
            search_alg=ConcurrencyLimiter(searcher, max_concurrent=job.max_concurrent),
            scheduler=scheduler,
            num_samples=job.num_samples,
            time_budget_s=job.time_budget_s,
            reuse_actors=False,  # each trial gets a fresh process: its own TF threads and precision policy
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage,
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=job.keep_checkpoints,
                checkpoint_score_attribute=job.metric,
                checkpoint_score_order=job.mode,
            ),
            failure_config=tune.FailureConfig(max_failures=job.max_failures),
            verbose=1,
        ),
    )


def _write_provenance(ours: Path, job: JobConfig, job_path: Path, space_path: Path, info, command: str) -> None:
    (ours / "job.yaml").write_text(yaml.safe_dump(to_dict(job), sort_keys=False))
    shutil.copyfile(space_path, ours / "searchspace.yaml")
    (ours / "command.txt").write_text(command + "\n")
    (ours / "dataset.json").write_text(json.dumps(info.to_json(), indent=1))
    (ours / "environment.json").write_text(json.dumps(_versions(), indent=1))


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("polyp-ray", "tensorflow", "keras", "ray", "optuna", "numpy", "pandas", "scikit-learn"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def summarise_trials(results, job: JobConfig, prepared: dict[int, PreparedData], refs: dict[int, ray.ObjectRef],
                     ours: Path) -> pd.DataFrame:
    """trials.csv, each trial's test evaluation, and a copy of the winner as ``best/``."""
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
            out = ours / "trials" / row["trial_id"]
            pending[row["trial_id"]] = (config, _test_scores(task, best, config, refs, out, row["trial_id"]))
    for trial_id, (config, scores) in pending.items():
        body = _collect(scores, config, prepared[config.image_size], ours / "trials" / trial_id)
        rows[trial_id].update(test_dice=body["summary"]["dice"], test_iou=body["summary"]["iou"],
                              test_miou_2class=body["summary"]["miou_2class"], n_params=body["n_params"])
    if not rows:
        raise PolypRayError("the search produced no trials")
    table = pd.DataFrame(list(rows.values()))
    table = table.sort_values(f"best_{job.metric}", ascending=job.mode == "min", na_position="last")
    table.to_csv(ours / "trials.csv", index=False)
    _keep_winner(table.iloc[0]["trial_id"], checkpoints, ours)
    return table


def _trial_row(result, job: JobConfig) -> tuple[dict[str, Any], tuple[Any, dict] | None]:
    history = result.metrics_dataframe
    last = result.metrics or {}
    trial_id = last.get("trial_id") or Path(result.path).name
    epochs_run = int(history["epoch"].max()) if history is not None and "epoch" in history else 0
    wall = float(last.get("time_total_s", 0.0))
    row: dict[str, Any] = {
        "trial_id": trial_id, **(result.config or {}),
        "status": "ERROR" if result.error else "TERMINATED", "epochs_run": epochs_run,
        "stopped_early": result.error is None and epochs_run < job.max_epochs,
        "wall_s": wall, "cpu": job.resources.cpu, "gpu": job.resources.gpu,
        "cpu_hours": wall * job.resources.cpu / 3600, "gpu_hours": wall * job.resources.gpu / 3600,
        "node_ip": last.get("node_ip"), "node_id": last.get("node_id"), "trial_dir": result.path,
    }
    best = _best_checkpoint(result, job)
    if best is not None:
        metrics = best[1]
        row.update(best_epoch=metrics.get("epoch"), checkpoint=best[0].path)
        row.update({f"best_{key}": metrics.get(key) for key in ("val_dice", "val_iou", "val_miou_2class", "val_loss")})
    return row, best


def _best_checkpoint(result, job: JobConfig):
    scored = [(c, m) for c, m in (result.best_checkpoints or []) if m.get(job.metric) is not None]
    if not scored:
        return None
    pick = max if job.mode == "max" else min
    return pick(scored, key=lambda cm: cm[1][job.metric])


def _test_scores(task, best, config, refs: dict, out: Path, trial_id: str):
    """A finished evaluation from an earlier run of this experiment, or a Ray task scoring the checkpoint
    on the cluster with the trial's own resources (GPUs, where the trials had them)."""
    checkpoint, metrics = best
    epoch = int(metrics.get("epoch", 0))
    out.mkdir(parents=True, exist_ok=True)
    (out / "trial_config.json").write_text(json.dumps(to_dict(config), indent=1))
    existing = out / "test_metrics.json"
    if existing.exists() and json.loads(existing.read_text()).get("checkpoint_epoch") == epoch:
        return json.loads(existing.read_text())
    return task.remote(checkpoint, to_dict(config), refs[config.image_size], trial_id, epoch)


def _score_checkpoint(checkpoint, config_dict: dict, data: PreparedData, trial_id: str, epoch: int):
    from polyp_ray.config import trial_from_dict
    from polyp_ray.runtime import configure_tensorflow
    from polyp_ray.trial import score_test

    config = trial_from_dict(config_dict)
    configure_tensorflow("float32", config.seed, config.cpu_threads)
    with checkpoint.as_directory() as folder:
        model = load_model(checkpoint_model(Path(folder)))
    return score_test(model, config, data, trial_id, epoch)


def _collect(scores, config, data: PreparedData, out: Path) -> dict[str, Any]:
    if isinstance(scores, dict):  # evaluated by an earlier run of this experiment
        return scores
    from polyp_ray.trial import write_test_outputs

    body, probs = ray.get(scores)
    write_test_outputs(out, body, data, probs, config)
    return body


def _keep_winner(trial_id: str, checkpoints: dict[str, Any], ours: Path) -> None:
    checkpoint = checkpoints.get(trial_id)
    if checkpoint is None:
        return
    best = ours / "best"
    best.mkdir(exist_ok=True)
    with checkpoint.as_directory() as folder:
        export_archive(Path(folder), best / "model.keras")
    shutil.copyfile(ours / "trials" / trial_id / "trial_config.json", best / "trial_config.json")


def _print_table(table: pd.DataFrame) -> None:
    columns = [c for c in ("trial_id", "model", "base_width", "image_size", "batch_size", "learning_rate",
                           "epochs_run", "best_val_dice", "test_dice", "test_iou", "test_miou_2class", "wall_s")
               if c in table]
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.4f}".format):
        print(table[columns].to_string(index=False))


def _write_report(exp_dir: Path) -> Path | None:
    from polyp_ray.report import build_report

    try:
        return build_report(exp_dir)
    except Exception as err:  # noqa: BLE001 - the results are on disk; a report bug must not hide them
        print(f"warning: the report failed ({type(err).__name__}: {err}); "
              f"rerun: python -m polyp_ray.report {exp_dir}", file=sys.stderr)
        return None
