"""The report's "Is the pick real?" (a bootstrap over the validation images of the top-k trials) and its
cross-validation section, on hand-written experiment folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from polyp_ray.cross_validation import cross_validation_body
from polyp_ray.evaluation import VAL_PER_IMAGE
from polyp_ray.experiment import ExperimentLayout
from polyp_ray.report import build_report
from polyp_ray.report.cross_validation import pick_real, section
from polyp_ray.report.experiment import load_experiment
from tests.report.fake import write_experiment

VAL = [f"v{i:02d}" for i in range(40)]


def _with_val_scores(exp: Path, gaps: list[float], noise: float) -> list[str]:
    """Per-image validation Dice for the best trials by validation: trial r scores ``gaps[r]`` below the
    first on average, with per-image noise (the same noise, shuffled, for every trial: the means differ by
    the gaps alone); returns their ids, best first."""
    layout = ExperimentLayout(exp)
    experiment = load_experiment(exp)
    ids = [str(t) for t in experiment.scored_trials()["trial_id"]][:len(gaps)]
    rng = np.random.default_rng(0)
    base = rng.uniform(0.3, 0.9, len(VAL))
    shared = noise * rng.standard_normal(len(VAL))
    for trial_id, gap in zip(ids, gaps, strict=True):
        path = layout.trial(trial_id).test_metrics
        body = json.loads(path.read_text())
        dice = base - gap + rng.permutation(shared)
        body[VAL_PER_IMAGE] = {"stems": VAL, "dice": dice.tolist(), "iou": (dice / (2 - dice)).tolist()}
        path.write_text(json.dumps(body))
    return ids


def test_a_clear_winner_stays_first_in_every_resample(tmp_path: Path) -> None:
    exp = write_experiment(tmp_path)
    ids = _with_val_scores(exp, [0.0, 0.3, 0.4], noise=0.01)
    text = pick_real(load_experiment(exp))
    assert "stays first among the top 3" in text and "<b>100%</b>" in text and "A clear pick" in text
    assert ids[0].split("<")[0] in text
    assert "cannot tell them apart" not in text


def test_a_noisy_pick_says_the_split_cannot_tell_and_points_to_cross_validation(tmp_path: Path) -> None:
    exp = write_experiment(tmp_path)
    _with_val_scores(exp, [0.0, 0.001, 0.002], noise=0.2)  # apart by far less than the noise
    text = pick_real(load_experiment(exp))
    share = int(text.split("in <b>")[1].split("%")[0])
    assert share < 70
    assert "The split cannot tell them apart" in text and "cross_validation: {folds: 5, top_k: 3}" in text


def test_without_per_image_validation_scores_the_pick_is_not_judged(tmp_path: Path) -> None:
    exp = write_experiment(tmp_path)
    assert "Not computed" in pick_real(load_experiment(exp))


def test_the_cross_validation_section_gives_fold_means_and_says_the_pick_changed(tmp_path: Path) -> None:
    exp = write_experiment(tmp_path)
    layout = ExperimentLayout(exp)
    job = yaml.safe_load(layout.job.read_text())
    layout.job.write_text(yaml.safe_dump({**job, "cross_validation": {"folds": 2, "top_k": 2}}))
    entries = [{"trial_id": "first", "validation": 0.7, "fold_scores": [0.5, 0.6], "mean": 0.55, "std": 0.07,
                "fold_test_dice": [0.5, 0.52], "ensemble_test": {"dice": 0.53, "dice_low": 0.4, "dice_high": 0.6,
                                                                 "n": 30}},
               {"trial_id": "second", "validation": 0.65, "fold_scores": [0.62, 0.64], "mean": 0.63, "std": 0.01,
                "fold_test_dice": [0.6, 0.61], "ensemble_test": {"dice": 0.62, "dice_low": 0.5, "dice_high": 0.7,
                                                                 "n": 30}}]
    folds = [{"train": ["a"], "val": ["b"], "test": []}, {"train": ["b"], "val": ["a"], "test": []}]
    body = cross_validation_body(entries, folds, "val_dice", "max", 0)
    assert (body["winner"], body["validation_pick"], body["changed"]) == ("second", "first", True)
    layout.cross_validation.write_text(json.dumps(body))
    html = section(load_experiment(exp))
    assert "0.630 ± 0.010" in html and "0.550 ± 0.070" in html
    assert "The winner by fold mean is second (validation&#x27;s pick was first: changed)." in html
    page = build_report(exp, tmp_path / "r.html", gallery=False).read_text()
    assert 'href="#cross-validation"' in page and 'href="#pick"' in page
    body = cross_validation_body(entries[:1], folds, "val_dice", "max", 0)
    assert not body["changed"] and body["winner"] == "first"
    assert cross_validation_body(entries, folds, "val_loss", "min", 0)["winner"] == "first"
