"""run_search: one search from a checked job to the experiment folder and its report.

The dataset is decoded once per image size on the driver and put into Ray's object store
(``build_trainable``): every trial on every node reads the same arrays, with no shared filesystem and
no second decode.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from ray import tune

from polyp_ray.config import JobConfig
from polyp_ray.data.dataset import check_dataset
from polyp_ray.data.external import external_sets
from polyp_ray.errors import ConfigError, one_line
from polyp_ray.metrics import METRICS
from polyp_ray.searchspace import SearchSpace
from polyp_ray.storage import ExperimentStore, locate
from polyp_ray.tuning.budget import NOT_STARTED
from polyp_ray.tuning.cluster import check_local_resources, start_ray
from polyp_ray.tuning.cross_validate import cross_validate, plan_folds
from polyp_ray.tuning.finish import summarise_trials
from polyp_ray.tuning.generalise import generalise
from polyp_ray.tuning.interrupt import snapshot_on_signal
from polyp_ray.tuning.provenance import check_resume_unchanged, write_provenance
from polyp_ray.tuning.strategies import describe_strategy, one_strategy_line
from polyp_ray.tuning.trainable import build_trainable
from polyp_ray.tuning.tuner import new_tuner


@dataclass(frozen=True)
class SearchOptions:
    """How the search is run, as the command line asked for it."""

    command: str = "python -m polyp_ray.search"
    address: str | None = None  # attach to this Ray cluster; None starts a private local Ray
    name: str | None = None
    resume: bool = False
    verbose: bool = False
    min_nodes: int = 1  # with address: wait until this many Ray nodes have joined (a Slurm job's)


def run_search(job: JobConfig, space: SearchSpace, space_path: Path, options: SearchOptions) -> ExperimentStore:
    """Run the search and score its trials; return where the experiment lives (its local folder, or the
    local mirror of a storage URI, holds everything the report reads)."""
    described = check_dataset(job.trial.data)  # refuses a bad dataset before anything is written
    described.info.announce()
    largest = max(int(b) for b in space.possible("batch_size", job.trial.batch_size))
    described.info.check_batch_size(largest, f"{space.source}: batch_size" if largest != job.trial.batch_size
                                    else "trial.batch_size")
    external = external_sets(job.trial.data)  # ... and a bad external test set
    folds = plan_folds(job, described, largest)  # ... and folds the pool cannot give
    experiment = locate(job.storage_path, job.name, options.name, options.resume,
                        job.trial.data.resolved_cache_dir())
    layout = experiment.layout
    if options.resume:
        if not tune.Tuner.can_restore(experiment.uri):
            raise ConfigError(f"--resume: {experiment.uri} holds no experiment to resume")
        if not check_resume_unchanged(layout, job, space_path):
            print(f"warning: {layout.ours} has no record of the interrupted run's job; resuming it unchecked",
                  file=sys.stderr)
    elif experiment.exists():
        raise ConfigError(f"--name: {experiment.uri} already exists; pass --resume to finish it, or another --name")
    start_ray(options.address, options.verbose, options.min_nodes)
    if not options.address:
        check_local_resources(job)
    built = build_trainable(job, space, described)
    if options.resume:
        print(f"resuming {experiment.uri}", flush=True)
        tuner = tune.Tuner.restore(experiment.uri, trainable=built.trainable, resume_errored=True)
    else:
        tuner = new_tuner(job, space, built.trainable, experiment)
        write_provenance(layout, job, space_path, described.info.to_json(), options.command)
        layout.strategy.write_text(json.dumps(describe_strategy(job, space), indent=1))
        print(f"strategy: {one_strategy_line(describe_strategy(job, space))}", flush=True)
    started = time.time()
    with snapshot_on_signal() as stop:
        results = tuner.fit()
    if stop.requested:
        raise KeyboardInterrupt  # the CLI's line: "interrupted; resume with --resume"
    print(f"search finished in {time.time() - started:.0f} s; "
          "evaluating each trial's best checkpoint on the test split", flush=True)
    table, checkpoints = summarise_trials(results, job, built.prepared, built.refs, layout)
    _print_table(table, job.metric)
    try:
        generalise(table, checkpoints, job, built.prepared, external, layout)
    except Exception as err:  # noqa: BLE001 - the search's results stand without this extra scoring
        print(f"warning: scoring the winner and the ensemble on the test and external sets failed: "
              f"{one_line(err)}", file=sys.stderr, flush=True)
    try:
        cross_validate(table, job, described, folds, layout)
    except Exception as err:  # noqa: BLE001 - the search's own pick stands without it
        print(f"warning: cross-validation failed: {one_line(err)}", file=sys.stderr, flush=True)
    experiment.publish()
    experiment.mirror_results()
    print(f"experiment: {experiment.uri}")
    return experiment


def _print_table(table: pd.DataFrame, metric: str) -> None:
    apart = table[table["status"] == NOT_STARTED] if "status" in table else table.iloc[0:0]
    table = table.drop(apart.index)
    columns = [c for c in ("trial_id", "model", "encoder", "base_width", "image_size", "batch_size", "learning_rate",
                           "epochs_run", f"best_{metric}", *(f"test_{name}" for name in METRICS), "wall_s")
               if c in table]
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", "{:.4f}".format):
        print(table[columns].to_string(index=False))
    if len(apart):
        print(f"{NOT_STARTED}: {len(apart)} trial(s), no epoch trained, not results: {', '.join(apart['trial_id'])}")
