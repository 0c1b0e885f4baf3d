"""The small real search that test_integrations.py reads with other tools, and that test_study_storage.py
warm-starts a search from: one search for both, built once per session."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import optuna
import pytest

from tests.conftest import search_command, write_job


def run_search(folder: Path, job: Path, name: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(search_command("--job", str(job), "--name", name, "--no-report"), cwd=folder,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def study_of(experiment: Path) -> optuna.Study:
    record = json.loads((experiment / "polyp_ray" / "optuna.json").read_text())
    return optuna.load_study(study_name=record["study_name"], storage=record["storage"])


@pytest.fixture(scope="session")
def experiment(tmp_path_factory: pytest.TempPathFactory, private_cache: Path) -> Path:
    """Two trials of two epochs, with the MLflow callback on (its default local store)."""
    folder = tmp_path_factory.mktemp("integrations")
    job = write_job(folder, "integ", folder / "experiments", num_samples=2, epochs=2, grace_period=2,
                    callbacks=["mlflow"], data={"synthetic_count": 32})
    proc = run_search(folder, job, "integ-run")
    assert "optuna-dashboard sqlite:///" in proc.stdout
    return folder / "experiments" / "integ-run"
