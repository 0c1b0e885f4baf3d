"""The job's typed keys of each search strategy (which Tune scheduler, which Optuna sampler, how the
winner is chosen after the search); the registries that build them, and the check of a job's strategy
against its space, are polyp_ray/tuning/strategies.py's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from polyp_ray.errors import ConfigError

if TYPE_CHECKING:
    from polyp_ray.config import JobConfig

# trials.csv's status of a trial the time budget stopped before its first epoch: not a result (tuning/budget.py)
NOT_STARTED = "not started (time budget)"
# trials.csv's proposed_by of a seeded point and of a sampler's random start-up draw (tuning/proposals.py)
SEEDED, STARTUP = "seeded point", "random start-up"


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
class CrossValidationConfig:
    """cross_validation: after the search, the top_k configurations (by validation) retrained on ``folds``
    grouped folds of the train+val pool (docs/generalisation.md); the winner is the best fold mean."""

    folds: int = 5
    top_k: int = 3

    def validate(self, where: str, num_samples: int, pool: int | None) -> None:
        """``pool``: how many train+val images the job's data gives, where the job alone tells (synthetic
        data, ``data.limit``); the exact check, in groups of near-duplicates, runs on the dataset itself
        (data/folds.py)."""
        problems = [("folds", self.folds >= 2, "must be >= 2"), ("top_k", self.top_k >= 1, "must be >= 1"),
                    ("top_k", self.top_k <= num_samples, f"must be <= num_samples ({num_samples})"),
                    ("folds", pool is None or self.folds <= pool,
                     f"{self.folds} folds need at least {self.folds} train+val images; the data gives {pool}")]
        for key, ok, message in problems:
            if not ok:
                raise ConfigError(f"{where}: cross_validation.{key}: {message}")


@dataclass
class StrategyKeys:
    """JobConfig's strategy keys (a base class, so they stay top-level keys of the job file)."""

    scheduler: str = "asha"  # asha | hyperband | median | pbt | fifo: Tune's (grace_period, reduction_factor: asha's)
    sampler: str = "tpe"  # tpe | random | cmaes | gp | qmc: Optuna's
    n_startup_trials: int | None = None  # tpe, cmaes, gp: random trials first (None: sized to the budget)
    multivariate: bool = False  # tpe: model the parameters jointly
    median: MedianConfig | None = None  # median's own keys
    pbt: PBTConfig | None = None  # pbt's own keys
    cross_validation: CrossValidationConfig | None = None  # None: the winner is the validation split's pick


def check_cross_validation(job: JobConfig, where: str) -> None:
    """The job's cross_validation keys, each bad value one ConfigError line naming it."""
    if job.cross_validation is None:
        return
    data = job.trial.data
    count = data.synthetic_count if data.is_synthetic else data.limit
    pool = None if count is None or data.split_files else count - round(count * data.test_fraction)
    job.cross_validation.validate(where, job.num_samples, pool)
