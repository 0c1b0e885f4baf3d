"""What a search records to be reproduced (job, space, command, dataset, versions), and the check that
a resumed search is the search it resumes."""

from __future__ import annotations

import json
import platform
import shutil
from pathlib import Path
from typing import Any

import yaml

from polyp_ray.config import JobConfig, to_dict
from polyp_ray.errors import ConfigError
from polyp_ray.experiment import ExperimentLayout


def write_provenance(layout: ExperimentLayout, job: JobConfig, space_path: Path, dataset: dict[str, Any],
                     command: str) -> None:
    layout.ours.mkdir(parents=True, exist_ok=True)
    layout.job.write_text(yaml.safe_dump(to_dict(job), sort_keys=False))
    shutil.copyfile(space_path, layout.space)
    layout.command.write_text(command + "\n")
    layout.dataset.write_text(json.dumps(dataset, indent=1))
    layout.environment.write_text(json.dumps(versions(), indent=1))


def check_resume_unchanged(layout: ExperimentLayout, job: JobConfig, space_path: Path) -> bool:
    """Refuse a resume whose job or space differs from the interrupted run's, naming the first key.

    A resumed Tuner keeps its scheduler, searcher and trials; only the trainable is rebuilt from the
    job given now, so a changed ``trial.epochs`` would continue on the old cosine schedule (learning rate
    0) and changed trial settings would mix two searches in one table. False when the interrupted run
    left no record to compare with (its driver died before writing it)."""
    saved_job, saved_space = layout.job, layout.space
    if not saved_job.is_file():
        return False
    # Read back through the type, so a key added since that run counts at its default, not as a change.
    before = to_dict(layout.read_job())
    now = to_dict(job)
    before.pop("name", None), now.pop("name", None)
    key = _first_difference(before, now)
    if key is not None:
        raise ConfigError(f"--resume: {key}: {_at(now, key)!r} now but {_at(before, key)!r} in the interrupted run "
                          f"({saved_job}); a resumed search keeps its settings: start a new search instead")
    if saved_space.is_file() and yaml.safe_load(saved_space.read_text()) != yaml.safe_load(space_path.read_text()):
        space_key = _first_difference(yaml.safe_load(saved_space.read_text()) or {},
                                      yaml.safe_load(space_path.read_text()) or {})
        raise ConfigError(f"--resume: searchspace: {space_key or space_path} differs from the interrupted run's "
                          f"({saved_space}); a resumed search keeps its space: start a new search instead")
    return True


def _first_difference(before: Any, now: Any, prefix: str = "") -> str | None:
    if isinstance(before, dict) and isinstance(now, dict):
        for key in sorted(set(before) | set(now), key=str):
            found = _first_difference(before.get(key), now.get(key), f"{prefix}{key}.")
            if found is not None:
                return found
        return None
    return None if before == now else prefix.rstrip(".")


def _at(body: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        body = body.get(part) if isinstance(body, dict) else None  # type: ignore[assignment]
    return body


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("polyp-ray", "tensorflow", "keras", "ray", "optuna", "numpy", "pandas", "scikit-learn"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found
