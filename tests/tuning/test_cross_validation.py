"""A tiny real search with ``cross_validation`` (the shared search of tests/tuning/conftest.py): the top-k
configurations retrained on grouped folds, their fold means in cross_validation.json, the pick by fold
mean, and the report's section. The search runs scheduler fifo with multivariate TPE, so it is also that
strategy's tiny search (test_strategy_searches.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from polyp_ray.config import TrialConfig
from polyp_ray.experiment import ExperimentLayout
from polyp_ray.tuning.cross_validate import candidates
from tests.conftest import console_of, search_command
from tests.tuning.test_strategy_searches import assert_strategy_ran


@pytest.mark.slow
def test_a_cross_validation_run_reports_fold_means_and_a_winner_that_can_change(experiment: Path) -> None:
    console = console_of(experiment)
    assert_strategy_ran(experiment, console, "fifo", "tpe")
    ours = experiment / "polyp_ray"
    trials = pd.read_csv(ours / "trials.csv")
    body = json.loads((ours / "cross_validation.json").read_text())
    assert body["folds"] == 2 and len(body["configs"]) == 2, console[-3000:]
    assert [c["trial_id"] for c in body["configs"]] == list(trials["trial_id"][:2])  # best validation first
    assert body["validation_pick"] == trials["trial_id"].iloc[0]
    for entry in body["configs"]:
        assert "error" not in entry, entry
        assert len(entry["fold_scores"]) == 2 and entry["mean"] == pytest.approx(np.mean(entry["fold_scores"]))
        assert 0.0 <= entry["ensemble_test"]["dice_low"] <= entry["ensemble_test"]["dice_high"] <= 1.0
        assert entry["ensemble_test"]["n"] == len(json.loads((ours / "dataset.json").read_text())["split"]["test"])
    best = max(body["configs"], key=lambda c: c["mean"])["trial_id"]
    assert body["winner"] == best and body["changed"] == (best != body["validation_pick"])
    held = body["held_out"]  # the two folds split the train+val pool between them
    split = json.loads((ours / "dataset.json").read_text())["split"]
    assert sorted(held[0] + held[1]) == sorted(split["train"] + split["val"]) and not set(held[0]) & set(held[1])
    assert "The winner by fold mean is" in console
    assert "cross-validation: 1/2 trial" in console and "cross-validation: 2/2 trial" in console  # its progress
    # Each checkpoint's per-image validation scores: their mean is the trial's validation score.
    first = json.loads((ours / "trials" / body["validation_pick"] / "test_metrics.json").read_text())
    assert np.mean(first["val_per_image"]["dice"]) == pytest.approx(trials["best_val_dice"].iloc[0], abs=1e-3)
    report = (ours / "report.html").read_text()
    assert 'id="cross-validation"' in report and "The winner by fold mean is" in report
    assert 'id="pick"' in report and "stays first among the top 2" in report


def test_the_candidates_start_with_the_trial_the_search_shipped(tmp_path: Path) -> None:
    # The best by validation whose checkpoint failed on test is not what best/ holds: the fold mean's pick is
    # compared with the search's winner (b), and c has no config to retrain from.
    layout = ExperimentLayout(tmp_path)
    table = pd.DataFrame({"trial_id": ["a", "b", "c", "d", "e"], "best_val_dice": [0.9, 0.8, 0.75, 0.7, np.nan],
                          "test_dice": [np.nan, 0.6, 0.6, 0.5, np.nan],
                          "test_error": ["OSError: checkpoint gone", np.nan, np.nan, np.nan, np.nan]})
    for trial_id in ("a", "b", "d", "e"):
        layout.trial(trial_id).write_config(TrialConfig())
    assert candidates(table, "val_dice", 5, layout) == [("b", 0.8), ("d", 0.7)]
    assert candidates(table, "val_dice", 1, layout) == [("b", 0.8)]
    assert candidates(table, "val_iou", 5, layout) == []  # no trial ranked by that metric


@pytest.mark.slow
@pytest.mark.changes_shared_search
def test_a_resume_after_a_crash_in_cross_validation_retrains_only_what_was_unfinished(experiment: Path) -> None:
    # The shared search as a crash during its second configuration's folds leaves it: the first one's entry
    # in the progress file, no cross_validation.json; then --resume, in place (the study's database is the
    # experiment's own: a copy elsewhere would not resume). It reruns only the scoring after the search.
    layout = ExperimentLayout(experiment)
    done = json.loads(layout.cross_validation.read_text())
    layout.cross_validation_progress.write_text(json.dumps({**done, "configs": done["configs"][:1]}))
    layout.cross_validation.unlink()
    folder = experiment.parents[1]
    resumed = subprocess.run(search_command("--job", str(folder / "integ.yaml"), "--name", experiment.name,
                                            "--resume", "--no-report"),
                             cwd=folder, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    kept, retrained = (c["trial_id"] for c in done["configs"])
    assert "(2 runs of 2 epochs; 1 kept from the earlier run)" in resumed.stdout
    line = next(x for x in resumed.stdout.splitlines() if f"1/2 trial {kept}:" in x)
    assert line.endswith("kept from the earlier run)") and f"fold mean {done['configs'][0]['mean']:.4f}" in line
    assert not next(x for x in resumed.stdout.splitlines() if f"2/2 trial {retrained}:" in x).endswith("run)")
    again = json.loads(layout.cross_validation.read_text())
    assert again["configs"][0] == done["configs"][0] and again["configs"][1]["trial_id"] == retrained
    assert not layout.cross_validation_progress.exists()
