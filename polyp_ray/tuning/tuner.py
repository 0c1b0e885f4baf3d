"""A new Tuner: OptunaSearch (the job's sampler, define-by-run space, its study in a database: study.py)
under a ConcurrencyLimiter and the budget guard, the job's scheduler (strategies.py), and the Tune callbacks
the job switches on (MLflow). Under PBT, which takes no searcher, the sampler draws the first population."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter

from polyp_ray.config import JobConfig
from polyp_ray.errors import ConfigError
from polyp_ray.experiment import ExperimentLayout
from polyp_ray.searchspace import SearchSpace
from polyp_ray.storage import ExperimentStore
from polyp_ray.tuning.budget import BudgetGuard
from polyp_ray.tuning.strategies import new_sampler, new_scheduler
from polyp_ray.tuning.study import new_searcher
from polyp_ray.tuning.trainable import score_key


def new_tuner(job: JobConfig, space: SearchSpace, trainable, experiment: ExperimentStore) -> tune.Tuner:
    score = score_key(job.metric)  # the trial's best epoch so far: what ASHA compares and TPE learns
    name, storage = experiment.name, experiment.storage
    callbacks = tune_callbacks(job, experiment.layout, name)
    search_alg: Any
    param_space: dict[str, Any] | None = None
    if job.scheduler == "pbt":
        points = population(job, space)
        # Each point's keys must be keys of the param space; None there means "the point's value as it is".
        param_space = {key: None for point in points for key in point}
        search_alg = BasicVariantGenerator(points_to_evaluate=points, max_concurrent=job.max_concurrent)
    else:
        guarded = BudgetGuard(new_searcher(job, space, experiment), job.time_budget_s, job.grace_period)
        search_alg = ConcurrencyLimiter(guarded, max_concurrent=job.max_concurrent)
    return tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric=score,
            mode=job.mode,
            search_alg=search_alg,
            scheduler=new_scheduler(job, space),
            num_samples=job.num_samples,
            time_budget_s=job.time_budget_s,
            # A finished trial's process takes the next trial: no new process, no TensorFlow import (the
            # default 12-trial search, 2 cores: 210 s against 249 s). Safe because a job's trials share one
            # thread count (its resources.cpu) and each trial sets its precision and seeds after clearing
            # Keras's state (runtime.py). A trial stopped mid-epoch that cannot hand over within Tune's 2 s
            # gets a fresh process, as before.
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage,
            checkpoint_config=tune.CheckpointConfig(
                # PBT clones a donor's LATEST checkpoint, which keeping only the best ones may have deleted.
                num_to_keep=None if job.scheduler == "pbt" else job.keep_checkpoints,
                checkpoint_score_attribute=job.metric,  # the best epochs themselves, not the running best
                checkpoint_score_order=job.mode,
            ),
            failure_config=tune.FailureConfig(max_failures=job.max_failures),
            # Each trial's Python output goes to stdout/stderr files in its working folder, synced into its
            # trial folder with the artifacts (TensorFlow's C++ lines stay in Ray's worker log), not on screen.
            log_to_file=True,
            sync_config=tune.SyncConfig(sync_artifacts=True),
            verbose=1,
            callbacks=callbacks or None,  # Tune still adds its JSON/CSV/TensorBoard loggers beside these
        ),
    )


def population(job: JobConfig, space: SearchSpace) -> list[dict[str, Any]]:
    """PBT's first ``num_samples`` points, drawn by the job's sampler (random or qmc) from the space."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=new_sampler(job))
    points = []
    for _ in range(job.num_samples):
        trial = study.ask()
        constants = space.define_by_run(trial) or {}
        points.append({**trial.params, **constants})
        study.tell(trial, 0.0)  # QMC walks its sequence over told trials
    return points


def mlflow_uri(job: JobConfig, layout: ExperimentLayout) -> str:
    """The job's tracking URI, or SQLite under the experiment (MLflow 3 refuses a plain ./mlruns file store);
    under the experiment's polyp_ray/, it is uploaded with it."""
    return job.mlflow_tracking_uri or f"sqlite:///{layout.mlflow_db}"


def tune_callbacks(job: JobConfig, layout: ExperimentLayout, name: str) -> list[Any]:
    if "mlflow" not in job.callbacks:
        return []
    if importlib.util.find_spec("mlflow") is None:  # Ray imports it only when the first trial starts
        raise ConfigError("callbacks: mlflow needs the mlflow package: pip install mlflow-skinny (or mlflow)")
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    uri = mlflow_uri(job, layout)
    if job.mlflow_tracking_uri is None:
        _local_mlflow_experiment(uri, job.name, layout.mlflow_artifacts)
    # One MLflow experiment per job, one run per trial; the tag tells this search's runs from earlier ones.
    return [MLflowLoggerCallback(tracking_uri=uri, experiment_name=job.name,
                                 tags={"polyp_ray.experiment": name, "polyp_ray.job": job.name})]


def _local_mlflow_experiment(uri: str, name: str, artifacts: Path) -> None:
    """Created here with its artifact folder inside the experiment: MLflow's default would be ./mlruns
    under whatever folder the search was started from."""
    import mlflow

    artifacts.mkdir(parents=True, exist_ok=True)
    client = mlflow.MlflowClient(uri)
    if client.get_experiment_by_name(name) is None:
        client.create_experiment(name, artifact_location=artifacts.as_uri())
