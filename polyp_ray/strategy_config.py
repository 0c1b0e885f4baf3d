"""The job's typed keys of each search strategy (which Tune scheduler, which Optuna sampler); the
registries that build them, and the check of a job's strategy against its space, are
polyp_ray/tuning/strategies.py's."""

from __future__ import annotations

from dataclasses import dataclass

# trials.csv's status of a trial the time budget stopped before its first epoch: not a result (tuning/budget.py)
NOT_STARTED = "not started (time budget)"


@dataclass
class MedianConfig:
    """scheduler: median (Tune's MedianStoppingRule; its grace period is the job's ``grace_period``)."""

    min_samples_required: int = 3  # trials that must have reached an epoch before one is stopped there


@dataclass
class PBTConfig:
    """scheduler: pbt (Tune's PopulationBasedTraining). Its mutations are the space's continuous
    parameters (their ranges, log or not); a trial it exploits resumes from the donor's checkpoint."""

    perturbation_interval: int = 2  # epochs between exploit/explore steps
    quantile_fraction: float = 0.25  # the bottom fraction clones the top fraction
    resample_probability: float = 0.25  # a mutated value is drawn afresh from its range this often


@dataclass
class StrategyKeys:
    """JobConfig's strategy keys (a base class, so they stay top-level keys of the job file)."""

    scheduler: str = "asha"  # asha | hyperband | median | pbt | fifo: Tune's (grace_period, reduction_factor: asha's)
    sampler: str = "tpe"  # tpe | random | cmaes | gp | qmc: Optuna's
    n_startup_trials: int | None = None  # tpe, cmaes, gp: random trials first (None: sized to the budget)
    multivariate: bool = False  # tpe: model the parameters jointly
    median: MedianConfig | None = None  # median's own keys
    pbt: PBTConfig | None = None  # pbt's own keys
