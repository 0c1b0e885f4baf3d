"""The search strategies a job chooses (scheduler, sampler): the checks at load time, the start-up rule,
the time-budget guard and PBT's lineage; tests/tuning/test_strategy_searches.py runs each through Tune."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import optuna
import pytest
from ray.tune.search import Searcher

from polyp_ray.config import JobConfig, TrialConfig
from polyp_ray.errors import ConfigError
from polyp_ray.searchspace import load_searchspace
from polyp_ray.strategy_config import PBTConfig
from polyp_ray.trial_state import TrialState
from polyp_ray.tuning.budget import BudgetGuard
from polyp_ray.tuning.strategies import (
    STARTUP_ATTR,
    BudgetedTPESampler,
    check_strategy,
    describe_strategy,
    startup_trials,
)
from polyp_ray.tuning.trainable import LINEAGE_FILE, lineage_after_restore
from tests.conftest import search_command, write_job

CHOICES_ONLY = "model: {choices: [unet]}\nbase_width: {choices: [4, 8]}\nimage_size: {choices: [32]}\n"
WITH_RATE = CHOICES_ONLY + "learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}\n"


def _space(tmp_path: Path, text: str):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return load_searchspace(path)


def test_pbt_on_a_space_without_a_continuous_parameter_is_one_line_exit_2(tmp_path: Path) -> None:
    job = write_job(tmp_path, "pbt", tmp_path / "exp", space=CHOICES_ONLY, scheduler="pbt", sampler="random")
    proc = subprocess.run(search_command("--job", str(job)), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "scheduler: pbt mutates the space's continuous parameters" in lines[0], lines
    assert not (tmp_path / "exp").exists()  # refused before anything was written


@pytest.mark.parametrize(("keys", "space", "message"), [
    ({"scheduler": "bohb"}, WITH_RATE, "scheduler: unknown scheduler 'bohb'"),
    ({"sampler": "nsga"}, WITH_RATE, "sampler: unknown sampler 'nsga'"),
    ({"scheduler": "pbt", "sampler": "tpe"}, WITH_RATE, "sampler: tpe learns from finished trials"),
    ({"scheduler": "asha", "pbt": PBTConfig()}, WITH_RATE, "pbt: given, but scheduler is asha"),
    ({"scheduler": "pbt", "sampler": "qmc", "pbt": PBTConfig(perturbation_interval=3)}, WITH_RATE,
     "pbt.perturbation_interval: must be in [1, trial.epochs)"),
    ({"sampler": "cmaes"}, CHOICES_ONLY, "sampler: cmaes models numeric ranges"),
    ({"sampler": "random", "multivariate": True}, WITH_RATE, "multivariate: only sampler tpe takes it"),
    ({"sampler": "qmc", "n_startup_trials": 3}, WITH_RATE, "n_startup_trials: sampler qmc has no start-up"),
])
def test_combinations_that_cannot_work_are_refused(tmp_path: Path, keys: dict, space: str, message: str) -> None:
    job = JobConfig(trial=TrialConfig(epochs=3), **keys)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        check_strategy(job, _space(tmp_path, space), "job.yaml")


def test_working_combinations_pass_and_are_described(tmp_path: Path) -> None:
    space = _space(tmp_path, WITH_RATE)
    for scheduler in ("asha", "hyperband", "median", "fifo"):
        for sampler in ("tpe", "random", "cmaes", "qmc"):
            check_strategy(JobConfig(scheduler=scheduler, sampler=sampler), space, "job.yaml")
    pbt = JobConfig(scheduler="pbt", sampler="qmc", trial=TrialConfig(epochs=4))
    check_strategy(pbt, space, "job.yaml")
    assert describe_strategy(pbt, space)["mutations"] == ["learning_rate"]


def test_tpe_start_up_is_sized_to_the_budget() -> None:
    assert startup_trials(JobConfig(num_samples=12)) == 3  # a quarter of the trials ...
    assert startup_trials(JobConfig(num_samples=4)) == 2  # ... at least 2 ...
    assert startup_trials(JobConfig(num_samples=200)) == 10  # ... at most 10
    assert startup_trials(JobConfig(num_samples=200, n_startup_trials=25)) == 25  # unless the job says


def _proposals_after(sampler: optuna.samplers.BaseSampler, finished: int) -> tuple[int, list[int]]:
    """How many of the next 3 trials TPE proposes itself (not from its random start-up sampler), and the
    trials the sampler recorded in the study as its start-up's random draws."""
    study = optuna.create_study(sampler=sampler)
    for i in range(finished):
        study.enqueue_trial({"x": i / finished})
        study.optimize(lambda t: -(t.suggest_float("x", 0, 1) - 0.3) ** 2, n_trials=1)
    calls = []
    random_part = sampler._random_sampler  # type: ignore[attr-defined]
    original = random_part.sample_independent
    random_part.sample_independent = lambda *a, **k: calls.append(1) or original(*a, **k)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    return 3 - len(calls), study.user_attrs.get(STARTUP_ATTR, [])


def test_tpe_start_up_ends_at_half_the_time_budget() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # 10 start-up trials and 3 finished: random still, unless half the budget has gone.
    # The record names the random draws (trials 3-5), never the 3 enqueued (seeded) points before them.
    assert _proposals_after(BudgetedTPESampler(half_budget_s=None, seed=0, n_startup_trials=10), 3) == (0, [3, 4, 5])
    assert _proposals_after(BudgetedTPESampler(half_budget_s=0.0, seed=0, n_startup_trials=10), 3) == (3, [])
    # Start-up ends by count alone: trial 3 drawn at random (3 finished of 4), trials 4 and 5 TPE's.
    assert _proposals_after(BudgetedTPESampler(half_budget_s=None, seed=0, n_startup_trials=4), 3) == (2, [3])


class _Fixed(Searcher):
    def __init__(self) -> None:
        super().__init__(metric="best_val_dice", mode="max")

    def suggest(self, trial_id: str) -> dict:
        return {"learning_rate": 1e-3}

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        pass


def test_no_trial_starts_that_cannot_reach_the_first_rung(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr("polyp_ray.tuning.budget.time.monotonic", lambda: clock[0])
    guard = BudgetGuard(_Fixed(), time_budget_s=100.0, first_rung=2)
    assert guard.suggest("a") == {"learning_rate": 1e-3}  # no estimate yet: it starts
    clock[0] += 30
    guard.on_trial_result("a", {"epoch": 1, "time_total_s": 30.0, "epoch_s": 20.0})
    clock[0] += 10
    guard.on_trial_result("a", {"epoch": 2, "epoch_s": 10.0})
    assert guard.time_to_first_rung() == 40.0  # 30 s to the first epoch, 10 s each after
    assert guard.suggest("b") == {"learning_rate": 1e-3}  # 60 s left >= 40 s
    clock[0] += 25  # 35 s left < 40 s
    assert guard.suggest("c") == Searcher.FINISHED
    unlimited = BudgetGuard(_Fixed(), time_budget_s=None, first_rung=2)
    unlimited.on_trial_result("a", {"epoch": 1, "time_total_s": 1e6})
    assert unlimited.suggest("b") == {"learning_rate": 1e-3}


def test_a_pbt_clone_records_its_donor_and_epoch(tmp_path: Path) -> None:
    donor = tmp_path / "ckpt"
    donor.mkdir()
    TrialState(epoch=4).write(donor)
    (donor / LINEAGE_FILE).write_text(json.dumps({"trial_id": "t1", "lineage": ["t0@2"]}))
    assert lineage_after_restore(donor, "t1") == ["t0@2"]  # its own checkpoint (a restart): unchanged
    assert lineage_after_restore(donor, "t2") == ["t0@2", "t1@4"]  # cloned from t1 at its epoch 4
