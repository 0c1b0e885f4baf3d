"""Typed configuration: one trial, one dataset, one search job; loaded from YAML and checked at the edge.

Every loader rejects unknown keys and wrong types with a one-line ``ConfigError`` that names the file
and the dotted key, so no half-valid dict travels further into the program.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polyp_ray.errors import ConfigError
from polyp_ray.metrics import METRICS, metric_direction
from polyp_ray.strategy_config import StrategyKeys, check_cross_validation
from polyp_ray.typed_yaml import apply_overrides, from_mapping, read_yaml

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
SYNTHETIC = "synthetic"
CACHE_FOLDER = "polyp_ray"  # under ~/.cache (not an experiment's polyp_ray/ subfolder)
CALLBACKS = ("mlflow",)  # JobConfig.callbacks: Tune callbacks a job may switch on
SPLIT_NAMES = ("train", "val", "test")
RENAMED_MAX_EPOCHS = "renamed: set trial.epochs (the epochs every trial trains for, ASHA's max_t)"


@dataclass
class DataConfig:
    """Where the image/mask pairs are and how they are split."""

    path: str | list[str] = SYNTHETIC  # a folder, a public dataset's name, "synthetic"; or a list of sources
    layout: str = "auto"  # a name from polyp_ray.data.layouts, or "auto"
    image_dir: str | None = None  # the "folders" layout: image folder relative to path
    mask_dir: str | None = None
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    split_seed: int = 0
    groups_csv: str | None = None  # CSV with a "stem" column and group_column; groups never straddle splits
    group_column: str | None = None
    group_near_duplicates: bool = True  # no groups CSV: group near-twins and video frames (docs/data.md)
    mask_threshold: int = 127  # 8-bit grey masks are binarised at > threshold (Kvasir masks carry JPEG noise)
    allow_empty_masks: bool = False  # a dataset whose masks are mostly empty is refused unless this is true
    allow_full_masks: bool = False  # ... and one whose masks are mostly polyp (inverted?) unless this is true
    limit: int | None = None  # keep only the first N pairs by stem (quick runs, the notebook's 300)
    cache_dir: str | None = None  # decoded-array cache; default $POLYP_RAY_CACHE or ~/.cache/polyp_ray
    synthetic_count: int = 120
    synthetic_seed: int = 0
    # Other centres' sets ({name: folder or public name}), never trained on nor selected by (docs/generalisation.md).
    external_tests: dict[str, str] = field(default_factory=dict)
    # A published split reproduced exactly: {train, val, test: a file of stems, one a line}; fractions unused.
    split_files: dict[str, str] = field(default_factory=dict)

    def validate(self, where: str) -> None:
        _check(0.0 < self.val_fraction < 1.0, where, "data.val_fraction", "must be in (0, 1): trials are ranked on val")
        _check(0.0 < self.test_fraction < 1.0, where, "data.test_fraction", "must be in (0, 1)")
        _check(self.val_fraction + self.test_fraction < 0.9, where, "data.val_fraction",
               "val_fraction + test_fraction must leave at least 10% for training")
        _check(0 <= self.mask_threshold < 255, where, "data.mask_threshold", "must be in [0, 255)")
        _check(self.limit is None or self.limit >= 3, where, "data.limit", "must be at least 3")
        _check(self.synthetic_count >= 6, where, "data.synthetic_count", "must be at least 6")
        _check(not isinstance(self.path, list) or (bool(self.path) and len(set(self.path)) == len(self.path)
               and all(isinstance(p, str) and p and p != SYNTHETIC for p in self.path)), where, "data.path",
               "a list of sources must name distinct folders or public datasets")
        for name, folder in self.external_tests.items():
            # The folder itself is checked where it is read (the driver), not on every worker.
            _check(bool(name) and "/" not in name and name != "test", where, f"data.external_tests.{name}",
                   "must be a plain name other than test")
            _check(bool(folder), where, f"data.external_tests.{name}", "needs a folder")
        _check((self.groups_csv is None) == (self.group_column is None), where, "data.group_column",
               "groups_csv and group_column must be given together")
        _check(set(self.split_files) in (set(), set(SPLIT_NAMES)), where, "data.split_files",
               f"needs exactly the keys {', '.join(SPLIT_NAMES)} (a file of stems for each)")

    @property
    def is_synthetic(self) -> bool:
        return self.path == SYNTHETIC

    def resolved_cache_dir(self) -> Path:
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        env = os.environ.get("POLYP_RAY_CACHE")
        return Path(env).expanduser() if env else Path.home() / ".cache" / CACHE_FOLDER


@dataclass
class HyperParams:
    """What a search may sample (searchspace files name only these fields); the rest of a trial is RunSettings."""

    model: str = "unet"  # a name from polyp_ray.models.registry
    encoder: str = "conv"  # a name from polyp_ray.models.encoders: the backbone under the model's decoder
    base_width: int = 8  # filters of the first conv; 64 is the notebook's U-Net
    image_size: int = 128
    batch_size: int = 8
    aug_strength: float = 0.5  # 0 = no augmentation, 1 = the strongest (notebook's shift is 0.05 at 1.0)
    learning_rate: float = 1e-3
    loss: str = "bce_dice"  # a name from polyp_ray.losses
    precision: str = "float32"
    encoder_weights: str = "none"  # keras.applications encoders: "imagenet" (downloaded once), "none", a .h5 path
    freeze_encoder_epochs: int = 0  # keras.applications encoders: keep the encoder frozen for the first N epochs
    threshold: float = 0.5  # probability above which a pixel is called polyp for Dice/IoU

    def validate(self, where: str) -> None:
        from polyp_ray.losses import LOSSES
        from polyp_ray.models.encoders import ENCODERS
        from polyp_ray.models.registry import MODELS, resolved_encoder

        _check(self.model in MODELS, where, "model", f"unknown model {self.model!r}; known: {sorted(MODELS)}")
        _check(self.encoder in ENCODERS, where, "encoder",
               f"unknown encoder {self.encoder!r}; known: {sorted(ENCODERS)}")
        try:
            resolved_encoder(self.model, self.encoder)
        except ValueError as err:
            raise ConfigError(f"{where}: encoder: {err}") from None
        _check(self.loss in LOSSES, where, "loss", f"unknown loss {self.loss!r}; known: {sorted(LOSSES)}")
        _check(self.precision in PRECISIONS, where, "precision", f"must be one of {list(PRECISIONS)}")
        _check(self.base_width >= 1, where, "base_width", "must be >= 1")
        _check(self.image_size >= 32 and self.image_size % 32 == 0, where, "image_size",
               "must be a multiple of 32 (the models halve it five times)")
        _check(self.batch_size >= 1, where, "batch_size", "must be >= 1")
        _check(0.0 <= self.aug_strength <= 1.0, where, "aug_strength", "must be in [0, 1]")
        _check(0.0 < self.learning_rate < 1.0, where, "learning_rate", "must be in (0, 1)")
        _check(0.0 < self.threshold < 1.0, where, "threshold", "must be in (0, 1)")
        _check(self.freeze_encoder_epochs >= 0, where, "freeze_encoder_epochs", "must be >= 0")


@dataclass
class RunSettings:
    """How a run is carried out, never sampled: in a search every trial shares them (the job's ``trial``)."""

    epochs: int = 10  # in a search: every trial's budget, ASHA's max_t (a stopped trial trains fewer)
    seed: int = 0  # the trial's weight-initialisation seed (JobConfig.seed seeds the sampler)
    num_predictions: int = 4  # prediction PNGs written after the test evaluation
    evaluate_test: bool = True  # a search evaluates the best checkpoint itself, after the trials
    output_dir: str = "runs/debug"  # where a debug run writes its artifacts
    cpu_threads: int = 0  # TensorFlow threads; 0 = all cores (a search sets the trial's CPU share)
    val_structure: bool = False  # S_alpha, E_phi, F^w_beta, MAE on val every epoch (slow): the job's metric is one
    data: DataConfig = field(default_factory=DataConfig)

    def validate(self, where: str) -> None:
        _check(self.epochs >= 1, where, "epochs", "must be >= 1")
        self.data.validate(where)


@dataclass
class TrialConfig(HyperParams, RunSettings):
    """Everything one training run needs: the hyperparameters (a search samples some) and the run
    settings; the fields stay flat (``config.image_size``, ``config.output_dir``, trial_config.json)."""

    def validate(self, where: str) -> None:
        HyperParams.validate(self, where)
        RunSettings.validate(self, where)


@dataclass
class Resources:
    cpu: float = 1.0
    gpu: float = 0.0  # fractional values let several trials share one GPU


@dataclass
class JobConfig(StrategyKeys):
    """One search: the data, the space, the budget and where the results go; the strategy's keys are StrategyKeys'."""

    name: str = "default"
    searchspace: str = "searchspace/default.yaml"  # relative to the job file's folder, then the CWD
    num_samples: int = 8
    # Not Tune's 1 and 3: on recorded CPU curves TPE + ASHA did better on these rungs (bench/README.md 11).
    grace_period: int = 2  # asha, median: epochs before a trial can be stopped (clipped to trial.epochs)
    reduction_factor: int = 2  # asha, hyperband: keep the top 1/reduction_factor at each rung
    metric: str = "val_dice"  # val_<a name of polyp_ray.metrics.METRICS>, or val_loss
    mode: str = ""  # "": the metric's own direction (MAE and the loss are minimised); max or min must agree
    max_concurrent: int = 2
    resources: Resources = field(default_factory=Resources)
    storage_path: str = "experiments"  # a local folder, or a cloud URI (s3://, gs://) on a cluster
    seed: int = 0
    time_budget_s: float | None = None
    max_failures: int = 2  # a crashed trial restarts from its last checkpoint this many times
    keep_checkpoints: int = 2  # per trial, the best by the metric
    points_to_evaluate: list[dict[str, Any]] = field(default_factory=list)
    # The Optuna study (docs/integrations.md): a SQLAlchemy URL such as postgresql://user@host/db for a team
    # database; None keeps it in SQLite inside the experiment (polyp_ray/optuna.db).
    optuna_storage: str | None = None
    warm_start: str | None = None  # an earlier experiment folder or storage URL: its finished trials seed TPE
    warm_start_study: str | None = None  # which study of warm_start's storage, where it holds several
    callbacks: list[str] = field(default_factory=list)  # "mlflow": Ray's MLflowLoggerCallback
    mlflow_tracking_uri: str | None = None  # None: SQLite in the experiment's polyp_ray/mlruns/
    ensemble_k: int = 3  # after the search: the top-k trials' mean probability, scored beside the winner (1: off)
    tta: bool = True  # ... and horizontal/vertical-flip test-time augmentation of the winner and the ensemble
    trial: TrialConfig = field(default_factory=TrialConfig)  # fixed values the space does not sample

    @property
    def epochs(self) -> int:  # every trial's number of epochs (trial.epochs), ASHA's max_t
        return self.trial.epochs

    def validate(self, where: str) -> None:
        _check(bool(self.name) and "/" not in self.name, where, "name", "must be a non-empty folder name")
        _check(self.num_samples >= 1, where, "num_samples", "must be >= 1")
        _check(self.trial.epochs >= 1, where, "trial.epochs", "must be >= 1")
        _check(1 <= self.grace_period <= self.trial.epochs, where, "grace_period", "must be in [1, trial.epochs]")
        _check(self.reduction_factor >= 2, where, "reduction_factor", "must be >= 2")
        try:
            name, self.mode = metric_direction(self.metric, self.mode)
        except ValueError as err:
            raise ConfigError(f"{where}: {err}") from None
        self.trial.val_structure = self.trial.val_structure or (name in METRICS and METRICS[name].structure)
        _check(self.max_concurrent >= 1, where, "max_concurrent", "must be >= 1")
        _check(self.resources.cpu > 0, where, "resources.cpu", "must be > 0")
        _check(self.resources.gpu >= 0, where, "resources.gpu", "must be >= 0")
        _check(self.time_budget_s is None or self.time_budget_s > 0, where, "time_budget_s", "must be > 0")
        _check(self.max_failures >= 0, where, "max_failures", "must be >= 0")
        _check(self.ensemble_k >= 1, where, "ensemble_k", "must be >= 1 (1: no ensemble)")
        _check(self.keep_checkpoints >= 1, where, "keep_checkpoints", "must be >= 1")
        _check(self.optuna_storage is None or "://" in self.optuna_storage, where, "optuna_storage",
               "must be a SQLAlchemy URL (postgresql://user:password@host/db, sqlite:////abs/path.db)")
        _check(set(self.callbacks) <= set(CALLBACKS), where, "callbacks", f"known callbacks: {list(CALLBACKS)}")
        _check(self.mlflow_tracking_uri is None or "mlflow" in self.callbacks, where, "mlflow_tracking_uri",
               "given, but callbacks does not list mlflow")
        _check(self.warm_start is None or "://" in self.warm_start or Path(self.warm_start).expanduser().is_dir(),
               where, "warm_start", f"{self.warm_start} is neither an experiment folder nor a storage URL")
        _check(self.warm_start_study is None or self.warm_start is not None, where, "warm_start_study",
               "given without warm_start")
        check_cross_validation(self, where)
        self.trial.validate(where)


def _check(ok: bool, where: str, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{where}: {key}: {message}")


def load_job_config(path: str | Path, overrides: list[str] | None = None,
                    debug: bool = False) -> tuple[JobConfig, Path]:
    """A job and the resolved path of its search-space file; ``data`` at the top level feeds the trial.

    The file is checked on its own first, so an error names the file; then with the ``--set``
    overrides, so an error an override brings names ``--set``. A debug run (one trial, no ASHA), or a job
    leaving ``grace_period`` out, takes any ``trial.epochs``: ASHA's grace period is clipped to it."""
    job = load_job(path, overrides, debug)
    return job, resolve_relative(job.searchspace, Path(path).resolve().parent, str(path), "searchspace")


def load_job(path: str | Path, overrides: list[str] | None = None, debug: bool = False) -> JobConfig:
    """The job alone, checked as ``load_job_config`` does: a ``--debug`` trial samples no search space."""
    raw = read_yaml(path)
    job = _job_from_raw(copy.deepcopy(raw), str(path), debug)
    if overrides:
        job = _job_from_raw(apply_overrides(raw, overrides), "--set", debug)
    return job


def _job_from_raw(raw: dict[str, Any], where: str, debug: bool) -> JobConfig:
    if "max_epochs" in raw:
        raise ConfigError(f"{where}: max_epochs: {RENAMED_MAX_EPOCHS}")
    data = raw.pop("data", None)
    if data is not None:
        from_mapping(DataConfig, data, where, "data.")  # a typo is named as the user wrote it: data.<key>
        trial = raw.setdefault("trial", {})
        if not isinstance(trial, dict):
            raise ConfigError(f"{where}: trial: expected a mapping")
        trial["data"] = data
    job = from_mapping(JobConfig, raw, where)
    if debug or "grace_period" not in raw:
        job.grace_period = max(1, min(job.grace_period, job.trial.epochs))
    job.validate(where)
    return job


def trial_config_for(job: JobConfig, params: dict[str, Any], **fixed: Any) -> TrialConfig:
    """The job's fixed trial settings (its epochs included) + one sampled point."""
    return with_sampled(job.trial, params, f"job {job.name}", **fixed)


def with_sampled(base: TrialConfig, params: dict[str, Any], where: str, **settings: Any) -> TrialConfig:
    """``base`` under one sampled point (HyperParams fields only, each type-checked) and the run
    ``settings`` the caller fixes (``evaluate_test``, ``cpu_threads``): a new, checked TrialConfig."""
    point = from_mapping(HyperParams, params, where)  # an unknown or mistyped parameter is refused here
    config = dataclasses.replace(base, **{name: getattr(point, name) for name in params}, **settings)
    config.validate(where)
    return config


def resolve_relative(name: str, base: Path, where: str, key: str) -> Path:
    """A path given in a file: relative to that file's folder first, then to the working directory."""
    candidate = Path(name).expanduser()
    for option in ([candidate] if candidate.is_absolute() else [base / candidate, Path.cwd() / candidate]):
        if option.exists():
            return option.resolve()
    raise ConfigError(f"{where}: {key}: {name} not found")


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def trial_from_dict(data: dict[str, Any], where: str = "trial config") -> TrialConfig:
    config = from_mapping(TrialConfig, data, where)
    config.validate(where)
    return config
