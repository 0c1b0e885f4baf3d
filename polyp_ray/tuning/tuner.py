"""A new Tuner: OptunaSearch (seeded TPE, define-by-run space) under a ConcurrencyLimiter, and ASHA."""

from __future__ import annotations

from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.optuna import OptunaSearch

from polyp_ray.config import JobConfig
from polyp_ray.searchspace import SearchSpace
from polyp_ray.tuning.trainable import score_key


def new_tuner(job: JobConfig, space: SearchSpace, trainable, name: str, storage: str) -> tune.Tuner:
    import optuna

    score = score_key(job.metric)  # the trial's best epoch so far: what ASHA compares and TPE learns
    searcher = OptunaSearch(
        space.define_by_run,
        metric=score,
        mode=job.mode,
        sampler=optuna.samplers.TPESampler(seed=job.seed, n_startup_trials=min(10, max(2, job.num_samples // 3))),
        points_to_evaluate=job.points_to_evaluate or None,
    )
    scheduler = ASHAScheduler(time_attr="epoch", max_t=job.max_epochs, grace_period=job.grace_period,
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
            log_to_file=True,  # each trial's own output (TensorFlow's start-up lines) in its folder, not on screen
            verbose=1,
        ),
    )
