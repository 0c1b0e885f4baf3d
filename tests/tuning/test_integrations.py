"""A real small search (tests/tuning/conftest.py) and what other tools read from it: the Optuna study (its
per-epoch values, optuna-dashboard over HTTP), MLflow's runs, TensorBoard's event files, Tune's
ExperimentAnalysis and restore_tuner. A search warm-started from it, keeping its study in PostgreSQL, is in
test_study_storage.py; a SIGKILLed driver in tests/test_search.py."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from optuna.trial import TrialState

from tests.tuning.conftest import study_of

pytestmark = pytest.mark.slow
BEST = "best_val_dice"


def test_the_study_holds_every_trial_with_its_per_epoch_values(experiment: Path) -> None:
    assert (experiment / "polyp_ray" / "optuna.db").is_file()
    study = study_of(experiment)
    table = pd.read_csv(experiment / "polyp_ray" / "trials.csv")
    finished = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(study.trials) == len(finished) == 2
    assert sorted(t.value for t in finished) == pytest.approx(sorted(table[BEST]))  # the number TPE learnt
    for trial in finished:
        assert sorted(trial.intermediate_values) == [1, 2]  # one value per epoch (Tune's training_iteration)
        assert trial.intermediate_values[2] == pytest.approx(trial.value)  # the running best, ended at the score
    assert study.user_attrs["polyp_ray"]["metric"] == BEST


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get_json(url: str, proc: subprocess.Popen, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.loads(response.read())
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_optuna_dashboard_serves_the_study(experiment: Path) -> None:
    port = _free_port()
    storage = json.loads((experiment / "polyp_ray" / "optuna.json").read_text())["storage"]
    dashboard = Path(sys.executable).with_name("optuna-dashboard")
    proc = subprocess.Popen([str(dashboard), storage, "--host", "127.0.0.1", "--port", str(port), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        studies = _get_json(f"http://127.0.0.1:{port}/api/studies", proc)["study_summaries"]
        assert [s["study_name"] for s in studies] == ["integ-run"]
        detail = _get_json(f"http://127.0.0.1:{port}/api/studies/{studies[0]['study_id']}", proc)
        assert len(detail["trials"]) == 2
        assert {t["state"] for t in detail["trials"]} == {"Complete"}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_mlflow_has_one_run_per_trial_with_its_epochs(experiment: Path) -> None:
    mlflow = pytest.importorskip("mlflow", reason="mlflow is in the test extra")
    client = mlflow.MlflowClient(f"sqlite:///{experiment / 'polyp_ray' / 'mlruns' / 'mlflow.db'}")
    found = client.get_experiment_by_name("integ")
    assert found is not None and found.artifact_location.startswith((experiment / "polyp_ray").as_uri())
    runs = client.search_runs([found.experiment_id])
    assert len(runs) == 2
    table = pd.read_csv(experiment / "polyp_ray" / "trials.csv")
    for run in runs:
        assert run.data.tags["polyp_ray.experiment"] == "integ-run"
        assert run.info.status == "FINISHED"
        history = client.get_metric_history(run.info.run_id, "val_dice")
        assert len(history) == 2  # one point per epoch
        assert float(run.data.params["learning_rate"]) in set(table["learning_rate"])


def test_tensorboard_event_files_are_written_per_trial(experiment: Path) -> None:
    trials = [p for p in experiment.iterdir() if (p / "params.json").is_file()]
    assert len(trials) == 2
    for trial in trials:
        assert list(trial.glob("events.out.tfevents.*")), f"{trial.name} has no TensorBoard events"


def test_experiment_analysis_and_restore_tuner_read_the_experiment(experiment: Path) -> None:
    import ray
    from ray.tune import ExperimentAnalysis

    from polyp_ray.tuning import restore_tuner

    table = pd.read_csv(experiment / "polyp_ray" / "trials.csv")
    analysis = ExperimentAnalysis(str(experiment))
    assert len(analysis.trials) == 2
    best = analysis.get_best_config(metric=BEST, mode="max")
    assert best["learning_rate"] == pytest.approx(table.iloc[0]["learning_rate"])
    before = {p.name: (p / "result.json").read_text() for p in experiment.iterdir() if (p / "params.json").is_file()}
    try:
        results = restore_tuner(experiment).fit()  # finished: nothing is trained again
    finally:
        ray.shutdown()
    assert len(results) == 2 and not results.errors
    assert results.get_best_result(metric=BEST, mode="max").config["learning_rate"] == pytest.approx(
        table.iloc[0]["learning_rate"])
    after = {p.name: (p / "result.json").read_text() for p in experiment.iterdir() if (p / "params.json").is_file()}
    assert after == before  # the same trials, not one epoch more
