"""The experiment folder's Optuna study (polyp_ray/stored_study.py): the record a search writes, the
folder's own database winning over the recorded URL when the folder moved, and the missing cases."""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna
import pytest

from polyp_ray.experiment import ExperimentLayout
from polyp_ray.stored_study import load_stored_study, stored_location, write_record


def _searched(root: Path, name: str = "s", values: tuple[float, ...] = (0.2, 0.7)) -> ExperimentLayout:
    layout = ExperimentLayout(root)
    url = f"sqlite:///{layout.optuna_db}"
    write_record(layout, url, name)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, storage=url, direction="maximize")
    for value in values:
        _add(study, value)
    return layout


def _add(study: optuna.Study, value: float) -> None:
    study.add_trial(optuna.trial.create_trial(params={"x": value}, value=value,
                                              distributions={"x": optuna.distributions.FloatDistribution(0, 1)}))


def test_the_record_a_search_writes_loads_its_study(tmp_path: Path) -> None:
    layout = _searched(tmp_path / "exp")
    assert stored_location(layout) == (f"sqlite:///{layout.optuna_db}", "s")
    study = load_stored_study(layout)
    assert study.study_name == "s" and [t.value for t in study.trials] == [0.2, 0.7]


def test_a_moved_folder_reads_its_own_database_not_the_recorded_path(tmp_path: Path) -> None:
    _searched(tmp_path / "old", values=(0.1,))
    shutil.copytree(tmp_path / "old", tmp_path / "new")
    # The old folder's study changes after the copy: the copy must not read it through its record.
    old = optuna.load_study(study_name="s", storage=f"sqlite:///{ExperimentLayout(tmp_path / 'old').optuna_db}")
    _add(old, 0.9)
    moved = ExperimentLayout(tmp_path / "new")
    assert stored_location(moved) == (f"sqlite:///{moved.optuna_db}", "s")
    assert [t.value for t in load_stored_study(moved).trials] == [0.1]


def test_a_study_in_a_team_database_is_found_through_the_record(tmp_path: Path) -> None:
    team = tmp_path / "team.db"  # stands for a PostgreSQL URL: the folder holds no optuna.db of its own
    layout = ExperimentLayout(tmp_path / "exp")
    write_record(layout, f"sqlite:///{team}", "shared")
    optuna.create_study(study_name="shared", storage=f"sqlite:///{team}")
    assert stored_location(layout) == (f"sqlite:///{team}", "shared")
    assert load_stored_study(layout).study_name == "shared"


def test_a_folder_without_a_study_says_so(tmp_path: Path) -> None:
    empty = ExperimentLayout(tmp_path / "empty")
    assert stored_location(empty) is None
    with pytest.raises(FileNotFoundError, match="optuna.json"):
        load_stored_study(empty)
    # A database without its record: a warm start can still pick the only study in it, a name it cannot.
    layout = _searched(tmp_path / "exp")
    layout.optuna_record.unlink()
    assert stored_location(layout) == (f"sqlite:///{layout.optuna_db}", None)
    with pytest.raises(FileNotFoundError, match="names no Optuna study"):
        load_stored_study(layout)
