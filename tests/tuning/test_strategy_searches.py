"""Each scheduler and sampler runs a tiny real search to its report, and a search under time_budget_s lists
no untrained trial among its results. Searches are the suite's dearest tests, so each strategy rides on a
search the suite runs anyway: asha + tpe is the shared tiny search (tests/conftest.py), fifo + multivariate
tpe the search of tests/tuning/conftest.py (checked in test_cross_validation.py), pbt + qmc the search whose
names are markup (tests/conftest.py's xss_experiment), median + cmaes the warm-started search of
test_study_storage.py, hyperband + random the time-budget search here."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest

from polyp_ray.strategy_config import NOT_STARTED
from tests.conftest import SMALL_SPACE, console_of, search_command, write_job
from tests.tuning.conftest import assert_strategy_ran


def _search(tmp_path: Path, name: str, **keys: object) -> tuple[Path, str]:
    keys = {"ensemble_k": 1, "tta": False, **keys}  # the winner alone scored after the search: less to wait for
    job = write_job(tmp_path, name, tmp_path / "exp", space=SMALL_SPACE, data={"synthetic_count": 24}, **keys)
    proc = subprocess.run(search_command("--job", str(job), "--name", name), cwd=tmp_path, capture_output=True,
                          text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return tmp_path / "exp" / name, proc.stdout


@pytest.mark.slow
def test_pbt_with_qmc_runs_a_tiny_search_to_its_report(xss_experiment: Path) -> None:
    assert_strategy_ran(xss_experiment, console_of(xss_experiment), "pbt", "qmc")


@pytest.mark.slow
def test_a_time_budget_under_hyperband_lists_no_untrained_trial_among_its_results(tmp_path: Path) -> None:
    # HyperBand pauses trials at its rungs: the budget's guard must pass those on to the sampler too. More
    # trials than the budget can hold, so the budget is what ends the search; 75 s, because a first epoch
    # (worker start, TensorFlow's import, the trace) took over 35 s on CI beside the other xdist worker.
    experiment, console = _search(tmp_path, "budget", num_samples=200, epochs=2, grace_period=1,
                                  time_budget_s=75.0, scheduler="hyperband", sampler="random")
    assert_strategy_ran(experiment, console, "hyperband", "random", trials=None)
    trials = pd.read_csv(experiment / "polyp_ray" / "trials.csv")
    assert len(trials) < 200  # the budget ended it
    untrained = trials[trials["epochs_run"] == 0]
    assert (untrained["status"] == NOT_STARTED).all()
    if len(untrained):  # listed apart on the console and in the report, never among the results
        assert NOT_STARTED in console
        report = (experiment / "polyp_ray" / "report.html").read_text()
        assert f"{NOT_STARTED}: the budget ended before their first epoch" in report
