"""The small real search that test_integrations.py reads with other tools, test_study_storage.py warm-starts
a search from, and test_cross_validation.py checks the folds of: one search for the three, built once per
session (each search costs the suite a Ray start, TensorFlow in every trial and the scoring after)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import optuna
import pandas as pd
import pytest

from polyp_ray.strategy_config import NOT_STARTED
from tests.conftest import CONSOLE, SMALL_SPACE, search_command, write_job


def run_search(folder: Path, job: Path, name: str, report: bool = False) -> subprocess.CompletedProcess:
    proc = subprocess.run(search_command("--job", str(job), "--name", name, *([] if report else ["--no-report"])),
                          cwd=folder, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def assert_strategy_ran(experiment: Path, console: str, scheduler: str, sampler: str, trials: int | None = 2) -> None:
    """Said on the console, recorded in strategy.json and the report, and every result trained (all
    ``trials`` of them, where the search had no time budget to end it early)."""
    assert f"strategy: scheduler {scheduler}, sampler {sampler}" in console
    assert json.loads((experiment / "polyp_ray" / "strategy.json").read_text())["scheduler"] == scheduler
    table = pd.read_csv(experiment / "polyp_ray" / "trials.csv")
    results = table[table["status"] != NOT_STARTED]
    assert trials is None or len(table) == trials
    assert len(results) >= 1 and (results["epochs_run"] >= 1).all() and results["best_val_dice"].notna().all()
    report = (experiment / "polyp_ray" / "report.html").read_text()
    assert f"scheduler <b>{scheduler}</b>, sampler <b>{sampler}</b>" in report


def study_of(experiment: Path) -> optuna.Study:
    record = json.loads((experiment / "polyp_ray" / "optuna.json").read_text())
    return optuna.load_study(study_name=record["study_name"], storage=record["storage"])


@pytest.fixture(scope="session")
def experiment(tmp_path_factory: pytest.TempPathFactory, private_cache: Path) -> Path:
    """Two trials of two epochs under FIFO with multivariate TPE (that strategy's tiny search), the MLflow
    callback on (its default local store), then cross_validation on 2 folds of the top 2, and the report."""
    folder = tmp_path_factory.mktemp("integrations")
    job = write_job(folder, "integ", folder / "experiments", space=SMALL_SPACE, num_samples=2, epochs=2, grace_period=2,
                    callbacks=["mlflow"], data={"synthetic_count": 24}, cross_validation={"folds": 2, "top_k": 2},
                    ensemble_k=1, tta=False, scheduler="fifo", sampler="tpe", multivariate=True, n_startup_trials=1)
    proc = subprocess.run(search_command("--job", str(job), "--name", "integ-run"), cwd=folder,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (folder / CONSOLE).write_text(proc.stdout)
    assert "optuna-dashboard sqlite:///" in proc.stdout
    return folder / "experiments" / "integ-run"
