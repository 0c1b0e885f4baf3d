"""The search's Optuna study as an experiment folder keeps it. ``optuna.json`` (this module owns its
format) records the study's storage URL and name; the folder's own ``optuna.db``, where there is one,
wins over the recorded URL, because a moved or copied folder keeps a URL that points at the old path.

Ray-free, so the report reads the study as the search's finishing steps and a warm start do.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar

import optuna

from polyp_ray.experiment import ExperimentLayout

T = TypeVar("T")


def write_record(layout: ExperimentLayout, url: str, study_name: str) -> None:
    layout.ours.mkdir(parents=True, exist_ok=True)
    layout.optuna_record.write_text(json.dumps({"storage": url, "study_name": study_name}, indent=1))


def stored_location(layout: ExperimentLayout) -> tuple[str, str | None] | None:
    """(storage URL, study name or None where no record names it) of the folder's study; None where the
    folder holds neither its own database nor a record."""
    record = json.loads(layout.optuna_record.read_text()) if layout.optuna_record.is_file() else {}
    url = f"sqlite:///{layout.optuna_db}" if layout.optuna_db.is_file() else record.get("storage")
    if url is None:
        return None
    name = record.get("study_name")
    return str(url), None if name is None else str(name)


def load_stored_study(layout: ExperimentLayout) -> optuna.Study:
    """The folder's study; FileNotFoundError where the folder does not say which study it is."""
    location = stored_location(layout)
    if location is None or location[1] is None:
        raise FileNotFoundError(f"{layout.optuna_record} is missing: the folder names no Optuna study")
    url, name = location
    return quietly(lambda: optuna.load_study(study_name=name, storage=url))


def quietly(make: Callable[[], T]) -> T:
    """Optuna logs "A new study created" / "Using an existing study" at INFO; our callers print their own
    line or none."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return make()
    finally:
        optuna.logging.set_verbosity(verbosity)
