"""The Tune trainable: the job's fixed trial settings + one sampled point, trained by ``run_trial``,
reporting every epoch with a checkpoint.

One rule scores a trial everywhere: its BEST epoch by the job's metric. Each report carries
``best_<metric>`` (the best so far), which is what ASHA compares at its rungs and what Optuna's TPE is
told when the trial ends; the checkpoints kept are the best epochs by the metric, and the one tested
and exported is the best of those, so the number TPE learns from is the number of the model we test.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray import tune

from polyp_ray.config import JobConfig, TrialConfig, with_sampled
from polyp_ray.data.dataset import Described, PreparedData, prepare_data
from polyp_ray.models.weights import weights_payload
from polyp_ray.pretrained import needed_weights
from polyp_ray.searchspace import SearchSpace
from polyp_ray.trial_state import TrialState

LINEAGE_FILE = "lineage.json"  # in each checkpoint: the trial that wrote it and the clones behind it


def score_key(metric: str) -> str:
    return f"best_{metric}"


@dataclass(frozen=True)
class Trainable:
    """The Tune trainable of a job, with the data it was given: decoded once per image size the space
    can sample, on the driver, and put into Ray's object store (``refs``) for every trial on every node."""

    trainable: Any
    prepared: dict[int, PreparedData]
    refs: dict[int, Any]


def build_trainable(job: JobConfig, space: SearchSpace, dataset: Described | None = None) -> Trainable:
    """The one place a search (run_search) and a restored one (restore_tuner) get their trainable.
    ``dataset``: the job's data as ``check_dataset`` already found it (checked once), or None to check it here."""
    sizes = space.possible("image_size", job.trial.image_size)
    prepared = {size: prepare_data(job.trial.data, size, dataset) for size in sizes}
    refs = {size: ray.put(data) for size, data in prepared.items()}
    # Weights fetched once, here, travel to every node with the data instead of each trial downloading them.
    weights = ray.put(weights_payload(needed_weights(job, space)))
    resources = {"cpu": job.resources.cpu, "gpu": job.resources.gpu}
    with_data = tune.with_parameters(tune_trial, base=job.trial, refs=refs, resources=resources,
                                     metric=job.metric, mode=job.mode, weights=weights)
    return Trainable(tune.with_resources(with_data, resources), prepared, refs)


def tune_trial(params: dict[str, Any], base: TrialConfig, refs: dict, resources: dict,
               metric: str = "val_dice", mode: str = "max", weights: Any = None) -> None:
    """One Tune trial (runs in a Ray worker process): ``base``, the job's trial settings (its epochs
    included; a TrialConfig pickles as it is), under the sampled ``params``."""
    from polyp_ray.models.weights import install_payload
    from polyp_ray.trial import run_trial

    if weights is not None:  # into this node's Keras cache, where the encoder looks (skipped when there)
        install_payload(ray.get(weights) if isinstance(weights, ray.ObjectRef) else weights)

    config = trial_settings(base, params, resources)
    run_trial(config, TuneReporter(resources, metric, mode), ray.get(refs[config.image_size]), metric, mode)


def trial_settings(base: TrialConfig, params: dict[str, Any], resources: dict[str, float]) -> TrialConfig:
    """A search's trial: ``base`` under ``params``, its threads its CPU share, its test scored afterwards
    by the driver (finish.py) rather than by the trial."""
    return with_sampled(base, params, "trial params", evaluate_test=False,
                        cpu_threads=max(1, int(resources["cpu"])))


class TuneReporter:
    """``tune.report`` with a checkpoint each epoch; a restarted trial resumes from its last one."""

    def __init__(self, resources: dict[str, float], metric: str = "val_dice", mode: str = "max") -> None:
        self.resources = resources
        self.metric = metric
        self.mode = mode
        self._restored: Path | None = None
        self.lineage: list[str] = []  # "donor@epoch" each time PBT cloned another trial's checkpoint into this one

    def restore(self) -> Path | None:
        checkpoint = tune.get_checkpoint()
        if checkpoint is None:
            return None
        self._restored = Path(checkpoint.to_directory(tempfile.mkdtemp(prefix="polyp_ray_restore_")))
        self.lineage = lineage_after_restore(self._restored, tune.get_context().get_trial_id())
        return self._restored

    def report(self, metrics: dict[str, Any], checkpoint_dir: Path) -> None:
        if self._restored is not None:  # the model is loaded by now: the copy (hundreds of MB) can go
            shutil.rmtree(self._restored, ignore_errors=True)
            self._restored = None
        # The best of every epoch the trial has run, from the state its checkpoint carries (earlier
        # processes' too): the number ASHA compares and TPE is told, by the rule run_trial keeps its best by.
        best = TrialState.read(checkpoint_dir).best(self.metric, self.mode)[1]
        # What the trial held and where it ran, for the report's CPU/GPU-hours and node placement.
        held = {"cpu": self.resources["cpu"], "gpu": self.resources["gpu"],
                "node_id": ray.get_runtime_context().get_node_id()}
        (checkpoint_dir / LINEAGE_FILE).write_text(json.dumps(
            {"trial_id": tune.get_context().get_trial_id(), "lineage": self.lineage}))
        extra = {"lineage": ";".join(self.lineage)} if self.lineage else {}
        tune.report({**metrics, score_key(self.metric): best, **held, **extra},
                    checkpoint=tune.Checkpoint.from_directory(str(checkpoint_dir)))


def lineage_after_restore(restored: Path, trial_id: str) -> list[str]:
    """The lineage a trial carries on from a checkpoint: its own, or (PBT cloned another trial's) the
    donor's followed by ``donor@epoch``, the donor's epoch the clone starts from."""
    owner = json.loads((restored / LINEAGE_FILE).read_text()) if (restored / LINEAGE_FILE).is_file() else {}
    lineage = list(owner.get("lineage", []))
    if owner.get("trial_id") not in (None, trial_id):
        lineage.append(f"{owner['trial_id']}@{TrialState.read(restored).epoch}")
    return lineage
