"""The experiment folder (docs/experiment-layout.md): the one owner of every file name in it, and the
one reader of a recorded job. Where the folder lives (a local folder, or a URI) is storage.py's.

Every writer (tuning/) and reader (report/, predict, export, search) names a file through
``ExperimentLayout`` or ``TrialFiles``; tests/test_experiment.py fails on a file name of the folder
spelled anywhere else in the package.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polyp_ray.config import JobConfig, TrialConfig, to_dict, trial_from_dict
from polyp_ray.errors import ConfigError
from polyp_ray.typed_yaml import from_mapping, read_yaml

OURS = "polyp_ray"  # our subfolder of the experiment folder, beside Tune's
TRIALS, BEST, ENSEMBLE, PREDICTIONS, MLRUNS = "trials", "best", "ensemble", "predictions", "mlruns"
GALLERY = "gallery"
EXTERNAL_GALLERY = "external-"  # best/gallery/external-NN/: the winner's worst images of one external set
FOLDERS = (OURS, TRIALS, BEST, ENSEMBLE, PREDICTIONS, MLRUNS, GALLERY)  # the folder names only this module spells
JOB, SPACE, COMMAND = "job.yaml", "searchspace.yaml", "command.txt"
DATASET, ENVIRONMENT, TRIALS_TABLE = "dataset.json", "environment.json", "trials.csv"
OPTUNA_DB, OPTUNA_RECORD, MLFLOW_DB = "optuna.db", "optuna.json", "mlflow.db"
REPORT, GENERALISATION, ENSEMBLE_MANIFEST = "report.html", "generalisation.json", "ensemble.json"
CROSS_VALIDATION, GALLERY_INDEX = "cross_validation.json", "gallery.json"
CROSS_VALIDATION_PROGRESS = "cross_validation.progress.json"
MODEL, TRIAL_CONFIG, TEST_METRICS = "model.keras", "trial_config.json", "test_metrics.json"
HISTORY, DEBUG_BEST = "history.json", "best.keras"
# Tune's per-trial files the report reads (mirrored from a storage URI); checkpoints stay in storage.
TUNE_RESULT, TUNE_PARAMS, TUNE_PROGRESS = "result.json", "params.json", "progress.csv"
MIRRORED = (TUNE_RESULT, TUNE_PARAMS, TUNE_PROGRESS)


@dataclass(frozen=True)
class TrialFiles:
    """One trial's own outputs: ``polyp_ray/trials/<id>/`` of a search, or a ``--debug`` run's folder."""

    folder: Path

    @property
    def config(self) -> Path:
        return self.folder / TRIAL_CONFIG

    @property
    def test_metrics(self) -> Path:
        return self.folder / TEST_METRICS

    @property
    def predictions(self) -> Path:
        return self.folder / PREDICTIONS

    @property
    def history(self) -> Path:  # a --debug run's epochs (a search's are in Tune's result.json)
        return self.folder / HISTORY

    @property
    def best_model(self) -> Path:  # a --debug run's best epoch (a search keeps checkpoints instead)
        return self.folder / DEBUG_BEST

    def write_config(self, config: TrialConfig) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config.write_text(json.dumps(to_dict(config), indent=1))

    def read_config(self) -> TrialConfig:
        return read_trial_config(self.config)


def read_trial_config(path: Path) -> TrialConfig:
    """The one reader of a trial_config.json (a trial's, the winner's): typed and checked, or a one-line
    ConfigError naming the file."""
    if not path.is_file():
        raise ConfigError(f"{path}: not found; is this a finished experiment folder?")
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: not valid JSON ({err})") from None
    return trial_from_dict(body, str(path))


@dataclass(frozen=True)
class GalleryFiles:
    """The winner's gallery (polyp_ray/gallery.py): numbered strips and their index."""

    folder: Path

    @property
    def index(self) -> Path:
        return self.folder / GALLERY_INDEX

    def strip(self, number: int) -> Path:  # numbered, not named by stem: a stem may be any string
        return self.folder / f"{number:02d}.png"


@dataclass(frozen=True)
class TuneTrialFiles:
    """The files of one of Tune's trial folders that the report reads."""

    folder: Path

    @property
    def result(self) -> Path:
        return self.folder / TUNE_RESULT

    @property
    def params(self) -> Path:
        return self.folder / TUNE_PARAMS

    @property
    def progress(self) -> Path:
        return self.folder / TUNE_PROGRESS


@dataclass(frozen=True)
class ExperimentLayout:
    """Every path of an experiment folder (``root``: the folder itself, or its local mirror)."""

    root: Path

    @property
    def ours(self) -> Path:
        return self.root / OURS

    @property
    def strategy(self) -> Path:  # which scheduler and sampler ran, with their keys (tuning/strategies.py)
        return self.ours / "strategy.json"

    @property
    def job(self) -> Path:
        return self.ours / JOB

    @property
    def space(self) -> Path:
        return self.ours / SPACE

    @property
    def command(self) -> Path:
        return self.ours / COMMAND

    @property
    def dataset(self) -> Path:
        return self.ours / DATASET

    @property
    def environment(self) -> Path:
        return self.ours / ENVIRONMENT

    @property
    def trials_table(self) -> Path:
        return self.ours / TRIALS_TABLE

    @property
    def optuna_db(self) -> Path:
        return self.ours / OPTUNA_DB

    @property
    def optuna_record(self) -> Path:
        return self.ours / OPTUNA_RECORD

    @property
    def report(self) -> Path:
        return self.ours / REPORT

    @property
    def generalisation(self) -> Path:
        return self.ours / GENERALISATION

    @property
    def cross_validation(self) -> Path:  # the job's cross_validation: the top-k retrained on grouped folds
        return self.ours / CROSS_VALIDATION

    @property
    def cross_validation_progress(self) -> Path:  # the configurations finished so far, for a --resume
        return self.ours / CROSS_VALIDATION_PROGRESS

    @property
    def mlruns(self) -> Path:
        return self.ours / MLRUNS

    @property
    def mlflow_db(self) -> Path:
        return self.ours / MLRUNS / MLFLOW_DB

    @property
    def mlflow_artifacts(self) -> Path:
        return self.ours / MLRUNS / "artifacts"

    @property
    def best(self) -> Path:  # the winner: what predict and export load
        return self.ours / BEST

    @property
    def best_model(self) -> Path:
        return self.ours / BEST / MODEL

    @property
    def best_config(self) -> Path:
        return self.ours / BEST / TRIAL_CONFIG

    @property
    def gallery(self) -> GalleryFiles:
        return GalleryFiles(self.ours / BEST / GALLERY)

    def external_gallery(self, number: int) -> GalleryFiles:  # numbered: a set's name may be any string
        return GalleryFiles(self.ours / BEST / GALLERY / f"{EXTERNAL_GALLERY}{number:02d}")

    def external_galleries(self) -> list[GalleryFiles]:
        """The external sets' galleries written, in the order the search wrote them."""
        return [GalleryFiles(p) for p in sorted(self.gallery.folder.glob(f"{EXTERNAL_GALLERY}[0-9][0-9]"))]

    @property
    def ensemble(self) -> Path:  # the top-k members, for predict --ensemble
        return self.ours / ENSEMBLE

    @property
    def ensemble_manifest(self) -> Path:
        return self.ours / ENSEMBLE / ENSEMBLE_MANIFEST

    def ensemble_member(self, rank: int, trial_id: str) -> Path:
        return self.ensemble / f"{rank}-{trial_id}.keras"

    def trial(self, trial_id: str) -> TrialFiles:
        return TrialFiles(self.ours / TRIALS / trial_id)

    @staticmethod
    def tune_trial(folder: Path) -> TuneTrialFiles:
        return TuneTrialFiles(folder)

    def is_finished(self) -> bool:
        """A finished search's summary is there (what the report needs)."""
        return self.trials_table.is_file()

    def experiments_inside(self) -> list[str]:
        """The finished experiments of a storage folder given in place of one of them."""
        return sorted(p.parent.parent.name for p in self.root.glob(f"*/{OURS}/{TRIALS_TABLE}"))

    def read_job(self) -> JobConfig:
        """The job this experiment ran, typed (see ``read_job``)."""
        return read_job(self.job)

    def job_record(self) -> dict[str, Any]:
        """The recorded job as a mapping, upgraded to the keys of now; {} when it is missing or unreadable
        (the report still shows what the rest of the folder holds)."""
        try:
            return upgraded(read_yaml(self.job))
        except ConfigError:
            return {}


def upgraded(record: dict[str, Any]) -> dict[str, Any]:
    """A recorded job (job.yaml, or a study's description of one) with the keys of now. Before
    ``trial.epochs`` replaced the top-level ``max_epochs`` (9c18ab2), ``max_epochs`` was what every
    trial trained for and ``trial.epochs`` was unused; keys added since are left to their defaults."""
    if "max_epochs" not in record:
        return record
    record = dict(record)
    trial = record.get("trial")
    record["trial"] = {**(trial if isinstance(trial, dict) else {}), "epochs": record.pop("max_epochs")}
    return record


def recorded_epochs(record: dict[str, Any]) -> int | None:
    """Every trial's epochs in a recorded job or a study's description (which keeps them at the top)."""
    trial = upgraded(record).get("trial")
    epochs = record.get("epochs") if "epochs" in record else (trial or {}).get("epochs")
    return None if epochs is None else int(epochs)


def read_job(path: Path) -> JobConfig:
    """The one reader of a recorded job, at every version we shipped: upgraded, then read through the
    type (so a key added since counts at its default). Not validated: its warm-start source, say, may
    be gone by now; a caller that runs it validates."""
    if not path.is_file():
        raise ConfigError(f"{path}: not found: not a polyp-ray experiment")
    return from_mapping(JobConfig, upgraded(read_yaml(path)), str(path))
