"""Who proposed each trial (polyp_ray/tuning/proposals.py), read back from a real study our TPE sampled,
and what the report says of the winner's origin."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pandas as pd

from polyp_ray.config import JobConfig
from polyp_ray.experiment import ExperimentLayout
from polyp_ray.report.strategy import summary
from polyp_ray.strategy_config import SEEDED, STARTUP
from polyp_ray.tuning.proposals import proposed_by
from polyp_ray.tuning.strategies import BudgetedTPESampler


def _searched(tmp_path: Path) -> tuple[ExperimentLayout, pd.DataFrame]:
    """A study as a search leaves it: one seeded point, random start-up draws, then TPE's proposals;
    and trials.csv's configuration columns, in another order and with a column the study does not hold."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    layout = ExperimentLayout(tmp_path)
    layout.ours.mkdir(parents=True)
    url = f"sqlite:///{layout.optuna_db}"
    layout.optuna_record.write_text(json.dumps({"storage": url, "study_name": "s"}))
    study = optuna.create_study(study_name="s", storage=url, direction="maximize",
                                sampler=BudgetedTPESampler(half_budget_s=None, seed=0, n_startup_trials=3))
    study.enqueue_trial({"model": "unet", "learning_rate": 1e-3})
    study.optimize(lambda t: -abs(t.suggest_float("learning_rate", 1e-4, 1e-2, log=True) - 3e-3)
                   + (t.suggest_categorical("model", ["unet", "encoder_decoder"]) == "unet"), n_trials=7)
    rows = [{"trial_id": f"t{t.number}", "base_width": 8, **t.params} for t in study.trials]
    rows.append({"trial_id": "clone", "base_width": 8, "model": "unet", "learning_rate": 0.5})  # a PBT mutation
    return layout, pd.DataFrame(rows[::-1])


def test_each_trial_is_labelled_by_who_proposed_it(tmp_path: Path) -> None:
    layout, table = _searched(tmp_path)
    labels = dict(zip(table["trial_id"], proposed_by(table, JobConfig(sampler="tpe"), layout), strict=True))
    # The seeded point counts among the finished, as TPE counts it: 3 finished by trial 3, which TPE proposed.
    assert labels == {"t0": SEEDED, "t1": STARTUP, "t2": STARTUP, "t3": "tpe", "t4": "tpe", "t5": "tpe",
                      "t6": "tpe", "clone": ""}
    # CMA-ES and GP keep no record of their start-up: no label rather than a wrong one.
    assert set(proposed_by(table, JobConfig(sampler="cmaes"), layout)) == {""}


def test_the_report_says_when_the_winner_was_a_random_draw() -> None:
    trials = pd.DataFrame({"trial_id": ["a", "b", "c"], "proposed_by": [STARTUP, STARTUP, "tpe"]})
    strategy = {"scheduler": "asha", "sampler": "tpe"}
    assert "one of the sampler's 2 random start-up draws" in summary(strategy, [], trials, "a")
    assert "The winner was proposed by the sampler (tpe)." in summary(strategy, [], trials, "c")
    seeded = trials.assign(proposed_by=[SEEDED, STARTUP, "tpe"])
    assert "The winner was a seeded point" in summary(strategy, [], seeded, "a")
    assert "The winner" not in summary(strategy, [], trials.drop(columns="proposed_by"), "a")  # older experiment
