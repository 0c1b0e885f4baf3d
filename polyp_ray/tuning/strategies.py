"""The search strategy a job chooses by name: Tune's scheduler (``scheduler:``) and Optuna's sampler
(``sampler:``), each from a registry of the libraries' own classes, and the check, at load time, that the
two fit together and fit the space.

TPE's random start-up is sized to the budget (``startup_trials``): a quarter of ``num_samples``, at
least 2 and at most 10, unless the job sets ``n_startup_trials``; with ``time_budget_s`` the start-up
also ends once half the budget has passed with at least 2 trials finished. So a small search, by count
or by time, has TPE proposing before half of it is spent.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from typing import Any

import optuna
from ray import tune
from ray.tune.schedulers import (
    ASHAScheduler,
    FIFOScheduler,
    HyperBandScheduler,
    MedianStoppingRule,
    PopulationBasedTraining,
    TrialScheduler,
)

from polyp_ray.config import JobConfig
from polyp_ray.errors import ConfigError
from polyp_ray.searchspace import Param, SearchSpace
from polyp_ray.strategy_config import MedianConfig, PBTConfig

FEEDBACK_FREE = ("random", "qmc")  # samplers that need no trial's result: the only ones PBT can use
NEEDS_RANGES = ("cmaes", "gp")  # model numeric ranges only (choices fall back to random sampling)


def startup_trials(job: JobConfig) -> int:
    """The random trials TPE, CMA-ES and GP run before they propose (the rule in the module docstring)."""
    if job.n_startup_trials is not None:
        return job.n_startup_trials
    return max(2, min(10, job.num_samples // 4))


STARTUP_ATTR = "polyp_ray:startup_trials"  # the study's user attribute: numbers of the start-up's random trials


class BudgetedTPESampler(optuna.samplers.TPESampler):
    """TPE whose random start-up also ends at half the time budget (with at least 2 trials finished):
    a search that fits fewer trials than the start-up would otherwise never let TPE propose.

    It records in the study (``STARTUP_ATTR``) which trials its start-up drew at random, because with
    trials running in parallel and a start-up ended by the clock a trial's number does not say it: a
    winner can then be told apart as TPE's proposal, a random draw, or a seeded (enqueued) point."""

    def __init__(self, *, half_budget_s: float | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._half_at = None if half_budget_s is None else time.monotonic() + half_budget_s
        self._startup_over = False

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        super().before_trial(study, trial)
        if self._startup_over:  # finished trials only grow and the start-up only shrinks: no need to count
            return
        # TPE's own test (optuna/samplers/_tpe/sampler.py): fewer finished trials than the start-up -> random.
        finished = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                                 optuna.trial.TrialState.PRUNED)))
        if self._half_at is not None and time.monotonic() >= self._half_at and finished >= 2:
            self._n_startup_trials = min(self._n_startup_trials, finished)
        self._startup_over = finished >= self._n_startup_trials
        if not self._startup_over and "fixed_params" not in trial.system_attrs:
            study.set_user_attr(STARTUP_ATTR, [*study.user_attrs.get(STARTUP_ATTR, []), trial.number])


def _tpe(job: JobConfig) -> optuna.samplers.BaseSampler:
    half = None if job.time_budget_s is None else job.time_budget_s / 2
    return BudgetedTPESampler(half_budget_s=half, seed=job.seed, n_startup_trials=startup_trials(job),
                              multivariate=job.multivariate)  # quiet on independent sampling since 4.9


def _random(job: JobConfig) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=job.seed)


def _cmaes(job: JobConfig) -> optuna.samplers.BaseSampler:
    return optuna.samplers.CmaEsSampler(seed=job.seed, n_startup_trials=startup_trials(job),
                                        warn_independent_sampling=False)


def _gp(job: JobConfig) -> optuna.samplers.BaseSampler:
    return optuna.samplers.GPSampler(seed=job.seed, n_startup_trials=startup_trials(job))


def _qmc(job: JobConfig) -> optuna.samplers.BaseSampler:
    return optuna.samplers.QMCSampler(seed=job.seed, scramble=True, warn_independent_sampling=False,
                                      warn_asynchronous_seeding=False)


SAMPLERS: dict[str, Callable[[JobConfig], optuna.samplers.BaseSampler]] = {
    "tpe": _tpe, "random": _random, "cmaes": _cmaes, "gp": _gp, "qmc": _qmc}


def _asha(job: JobConfig, space: SearchSpace) -> TrialScheduler:
    return ASHAScheduler(time_attr="epoch", max_t=job.epochs, grace_period=job.grace_period,
                         reduction_factor=job.reduction_factor)


def _hyperband(job: JobConfig, space: SearchSpace) -> TrialScheduler:
    # Synchronous HyperBand pauses a bracket's trials until the bracket is full; stop_last_trials=False
    # lets the last rung's trials finish rather than pause forever in a bracket the budget never fills.
    return HyperBandScheduler(time_attr="epoch", max_t=job.epochs, reduction_factor=job.reduction_factor,
                              stop_last_trials=False)


def _median(job: JobConfig, space: SearchSpace) -> TrialScheduler:
    keys = job.median or MedianConfig()
    return MedianStoppingRule(time_attr="epoch", grace_period=job.grace_period,
                              min_samples_required=keys.min_samples_required)


def _pbt(job: JobConfig, space: SearchSpace) -> TrialScheduler:
    keys = job.pbt or PBTConfig()
    return PopulationBasedTraining(time_attr="epoch", perturbation_interval=keys.perturbation_interval,
                                   hyperparam_mutations=mutations(space), quantile_fraction=keys.quantile_fraction,
                                   resample_probability=keys.resample_probability, synch=False)


def _fifo(job: JobConfig, space: SearchSpace) -> TrialScheduler:
    return FIFOScheduler()


SCHEDULERS: dict[str, Callable[[JobConfig, SearchSpace], TrialScheduler]] = {
    "asha": _asha, "hyperband": _hyperband, "median": _median, "pbt": _pbt, "fifo": _fifo}
STOPS_AT_RUNGS = ("asha", "hyperband")  # schedulers whose first stop is at grace_period (the report's rungs)


def continuous(space: SearchSpace) -> list[Param]:
    """The space's float ranges that every trial samples (PBT's mutations: a conditional one may be absent)."""
    return [p for p in space.params if p.kind == "float" and not p.when]


def mutations(space: SearchSpace) -> dict[str, Any]:
    """PBT's hyperparam_mutations: each continuous parameter's own range, log-uniform where it is log."""
    return {p.name: (tune.loguniform(p.low, p.high) if p.log else tune.uniform(p.low, p.high))
            for p in continuous(space)}


def new_scheduler(job: JobConfig, space: SearchSpace) -> TrialScheduler:
    return SCHEDULERS[job.scheduler](job, space)


def new_sampler(job: JobConfig) -> optuna.samplers.BaseSampler:
    return SAMPLERS[job.sampler](job)


def check_strategy(job: JobConfig, space: SearchSpace, where: str) -> None:
    """One ConfigError line for the first combination of scheduler, sampler, keys and space that cannot work."""
    if job.scheduler not in SCHEDULERS:
        raise ConfigError(f"{where}: scheduler: unknown scheduler {job.scheduler!r}; known: {list(SCHEDULERS)}")
    if job.sampler not in SAMPLERS:
        raise ConfigError(f"{where}: sampler: unknown sampler {job.sampler!r}; known: {list(SAMPLERS)}")
    for key in ("median", "pbt"):
        if getattr(job, key) is not None and job.scheduler != key:
            raise ConfigError(f"{where}: {key}: given, but scheduler is {job.scheduler} (set scheduler: {key})")
    if job.multivariate and job.sampler != "tpe":
        raise ConfigError(f"{where}: multivariate: only sampler tpe takes it (sampler is {job.sampler})")
    if job.n_startup_trials is not None:
        if job.sampler in FEEDBACK_FREE:
            raise ConfigError(f"{where}: n_startup_trials: sampler {job.sampler} has no start-up (it never learns)")
        if job.n_startup_trials < 1:
            raise ConfigError(f"{where}: n_startup_trials: must be >= 1")
    numeric = [p for p in space.params if p.kind in ("float", "int")]
    if job.sampler in NEEDS_RANGES and not numeric:
        raise ConfigError(f"{where}: sampler: {job.sampler} models numeric ranges, and the space "
                          f"({space.source}) has none: every parameter is a choice; use tpe, random or qmc")
    if job.sampler == "gp" and importlib.util.find_spec("torch") is None:
        raise ConfigError(f"{where}: sampler: gp is Optuna's GPSampler, which needs PyTorch: pip install torch")
    if job.scheduler == "pbt":
        _check_pbt(job, space, where)


def _check_pbt(job: JobConfig, space: SearchSpace, where: str) -> None:
    keys = job.pbt or PBTConfig()
    if not continuous(space):
        raise ConfigError(f"{where}: scheduler: pbt mutates the space's continuous parameters, and the space "
                          f"({space.source}) has none that every trial samples (a float range without when)")
    if job.sampler not in FEEDBACK_FREE:
        raise ConfigError(f"{where}: sampler: {job.sampler} learns from finished trials, but under scheduler pbt "
                          f"it only draws the first population; use sampler: {' or '.join(FEEDBACK_FREE)}")
    if not 1 <= keys.perturbation_interval < job.epochs:
        raise ConfigError(f"{where}: pbt.perturbation_interval: must be in [1, trial.epochs) = [1, {job.epochs})")
    if not 0.0 < keys.quantile_fraction <= 0.5:
        raise ConfigError(f"{where}: pbt.quantile_fraction: must be in (0, 0.5]")
    if not 0.0 <= keys.resample_probability <= 1.0:
        raise ConfigError(f"{where}: pbt.resample_probability: must be in [0, 1]")
    if job.points_to_evaluate:
        raise ConfigError(f"{where}: points_to_evaluate: not taken with scheduler pbt (its sampler draws the "
                          "first population)")


def describe_strategy(job: JobConfig, space: SearchSpace) -> dict[str, Any]:
    """What ran, for provenance (strategy.json) and the report."""
    body: dict[str, Any] = {"scheduler": job.scheduler, "sampler": job.sampler}
    if job.sampler in ("tpe", "cmaes", "gp"):
        body["n_startup_trials"] = startup_trials(job)
        body["startup_rule"] = "n_startup_trials" if job.n_startup_trials is not None else \
            "num_samples // 4 in [2, 10]" + ("; ends at half of time_budget_s" if job.time_budget_s and
                                             job.sampler == "tpe" else "")
    if job.sampler == "tpe":
        body["multivariate"] = job.multivariate
    if job.scheduler in ("asha", "median"):
        body["grace_period"] = job.grace_period
    if job.scheduler in ("asha", "hyperband"):
        body["reduction_factor"] = job.reduction_factor
    if job.scheduler == "median":
        body["min_samples_required"] = (job.median or MedianConfig()).min_samples_required
    if job.scheduler == "pbt":
        keys = job.pbt or PBTConfig()
        body.update(perturbation_interval=keys.perturbation_interval, quantile_fraction=keys.quantile_fraction,
                    resample_probability=keys.resample_probability, mutations=[p.name for p in continuous(space)])
    return body


def one_strategy_line(body: dict[str, Any]) -> str:
    """``scheduler asha, sampler tpe (n_startup_trials 3, ...)`` for the console."""
    rest = ", ".join(f"{k} {v}" for k, v in body.items() if k not in ("scheduler", "sampler"))
    return f"scheduler {body['scheduler']}, sampler {body['sampler']}" + (f" ({rest})" if rest else "")
