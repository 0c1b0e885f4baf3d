"""``restore_tuner``: Tune's ``Tuner.restore`` on an experiment folder, with the trainable rebuilt from the
job and space the experiment recorded (``polyp_ray/job.yaml``, ``searchspace.yaml``) and its data decoded
and put into Ray's object store, as ``run_search`` does; users need no private function to continue,
re-fit or inspect a search from Python (docs/integrations.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray import tune

from polyp_ray.config import JobConfig
from polyp_ray.errors import ConfigError
from polyp_ray.experiment import ExperimentLayout
from polyp_ray.searchspace import SearchSpace, load_searchspace
from polyp_ray.tuning.cluster import start_ray
from polyp_ray.tuning.trainable import build_trainable


def restore_tuner(experiment: str | Path, address: str | None = None, resume_errored: bool = True,
                  **restore_options: Any) -> tune.Tuner:
    """A Tuner restored from a local experiment folder: ``.fit()`` finishes an interrupted search (the
    trials done are not rerun) or returns a finished one's results; ``.get_results()`` reads them.

    Starts a private local Ray when none is running (``address`` to attach to a cluster instead);
    ``restore_options`` go to ``tune.Tuner.restore`` (``restart_errored``, ``resume_unfinished``)."""
    folder = Path(experiment).expanduser().resolve()
    if not tune.Tuner.can_restore(str(folder)):
        raise ConfigError(f"restore_tuner: {folder} holds no Tune experiment (tuner.pkl)")
    job, space = recorded_job(folder)
    start_ray(address)
    trainable = build_trainable(job, space).trainable
    return tune.Tuner.restore(str(folder), trainable=trainable, resume_errored=resume_errored, **restore_options)


def recorded_job(folder: Path) -> tuple[JobConfig, SearchSpace]:
    """The resolved job and the space an experiment ran with, as its ``polyp_ray/`` folder recorded them."""
    layout = ExperimentLayout(folder)
    if not layout.job.is_file() or not layout.space.is_file():
        raise ConfigError(f"restore_tuner: {layout.ours} lacks {layout.job.name} or {layout.space.name}: "
                          "not a polyp-ray experiment")
    job = layout.read_job()
    # The warm start only seeded the study when the search began; its source may be gone by now.
    job.warm_start = job.warm_start_study = None
    job.validate(str(layout.job))
    return job, load_searchspace(layout.space)
