"""Each scheduler and sampler runs a tiny real search to its report, and a search under time_budget_s lists
no untrained trial among its results. Searches are the suite's dearest tests, so each strategy rides on a
search the suite runs anyway where it can: asha + tpe is the shared tiny search (tests/conftest.py), fifo +
multivariate tpe the search of tests/tuning/conftest.py (checked in test_cross_validation.py), median +
cmaes the search whose names are markup (tests/conftest.py's xss_experiment), hyperband + random the
time-budget search here; pbt + qmc has its own."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from polyp_ray.strategy_config import NOT_STARTED
from tests.conftest import SMALL_SPACE, console_of, search_command, write_job


def _search(tmp_path: Path, name: str, **keys: object) -> tuple[Path, str]:
    keys = {"ensemble_k": 1, "tta": False, **keys}  # the winner alone scored after the search: less to wait for
    job = write_job(tmp_path, name, tmp_path / "exp", space=SMALL_SPACE, data={"synthetic_count": 24}, **keys)
    proc = subprocess.run(search_command("--job", str(job), "--name", name), cwd=tmp_path, capture_output=True,
                          text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return tmp_path / "exp" / name, proc.stdout


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


@pytest.mark.slow
def test_pbt_with_qmc_runs_a_tiny_search_to_its_report(tmp_path: Path) -> None:
    experiment, console = _search(tmp_path, "pbt-qmc", num_samples=2, epochs=2, grace_period=1, scheduler="pbt",
                                  sampler="qmc", pbt={"perturbation_interval": 1, "quantile_fraction": 0.5})
    assert_strategy_ran(experiment, console, "pbt", "qmc")


@pytest.mark.slow
def test_median_stopping_with_cmaes_runs_a_tiny_search_to_its_report(xss_experiment: Path) -> None:
    assert_strategy_ran(xss_experiment, console_of(xss_experiment), "median", "cmaes")


@pytest.mark.slow
def test_a_time_budget_under_hyperband_lists_no_untrained_trial_among_its_results(tmp_path: Path) -> None:
    # HyperBand pauses trials at its rungs: the budget's guard must pass those on to the sampler too.
    experiment, console = _search(tmp_path, "budget", num_samples=6, epochs=2, grace_period=1, time_budget_s=35.0,
                                  scheduler="hyperband", sampler="random")
    assert_strategy_ran(experiment, console, "hyperband", "random", trials=None)
    trials = pd.read_csv(experiment / "polyp_ray" / "trials.csv")
    untrained = trials[trials["epochs_run"] == 0]
    assert (untrained["status"] == NOT_STARTED).all()
    if len(untrained):  # listed apart on the console and in the report, never among the results
        assert NOT_STARTED in console
        report = (experiment / "polyp_ray" / "report.html").read_text()
        assert f"{NOT_STARTED}: the budget ended before their first epoch" in report
