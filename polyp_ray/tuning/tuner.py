"""A new Tuner: OptunaSearch (seeded TPE, define-by-run space, its study in a database: study.py) under a
ConcurrencyLimiter, ASHA, and the Tune callbacks the job switches on (MLflow)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import ConcurrencyLimiter

from polyp_ray.config import JobConfig
from polyp_ray.errors import ConfigError
from polyp_ray.experiment import ExperimentLayout
from polyp_ray.searchspace import SearchSpace
from polyp_ray.storage import ExperimentStore
from polyp_ray.tuning.study import new_searcher
from polyp_ray.tuning.trainable import score_key


def new_tuner(job: JobConfig, space: SearchSpace, trainable, experiment: ExperimentStore) -> tune.Tuner:
    score = score_key(job.metric)  # the trial's best epoch so far: what ASHA compares and TPE learns
    name, storage = experiment.name, experiment.storage
    searcher = new_searcher(job, space, experiment)
    callbacks = tune_callbacks(job, experiment.layout, name)
    scheduler = ASHAScheduler(time_attr="epoch", max_t=job.epochs, grace_period=job.grace_period,
                              reduction_factor=job.reduction_factor)
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            metric=score,
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
