"""The Ray-free half of the generalisation scoring: which models are scored, their rows, and the paired
statistics, on hand-made probabilities (the search's own run of it is tests/tuning/test_generalise.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from polyp_ray.config import JobConfig, TrialConfig
from polyp_ray.generalisation import build_rows, choose, generalisation_body, score_row, scored_ids
from polyp_ray.models.registry import family_name

CONFIGS = {"a": TrialConfig(model="unet"), "b": TrialConfig(model="encoder_decoder"),
           "c": TrialConfig(model="unet", threshold=0.3), "d": TrialConfig(model="vgg16_unet")}


def test_only_trials_scored_on_test_are_ranked_in_the_tables_order() -> None:
    table = pd.DataFrame({"trial_id": ["a", "x", "b", "y"], "test_dice": [0.5, 0.9, 0.4, np.nan],
                          "test_error": [np.nan, "OSError: gone", np.nan, np.nan]})
    assert scored_ids(table) == ["a", "b"]


def test_the_winner_the_ensemble_and_each_familys_first_are_chosen() -> None:
    chosen = choose(["a", "b", "c", "d"], CONFIGS, ensemble_k=3)
    assert chosen.winner == "a" and chosen.members == ["a", "b", "c"]
    assert chosen.families == {family_name("unet", "conv"): "a", family_name("encoder_decoder", "conv"): "b",
                               family_name("vgg16_unet", "conv"): "d"}
    assert chosen.needed == ["a", "b", "c", "d"]
    assert choose(["a", "b"], CONFIGS, ensemble_k=1).members == []


def _probs(values: list[float]) -> np.ndarray:
    """One 4x4 probability map per image, each all one value."""
    return np.stack([np.full((4, 4, 1), v, np.float32) for v in values])


def test_rows_are_scored_per_image_and_paired_with_the_winner() -> None:
    truths = {"test": [np.ones((8, 8), np.uint8), np.ones((8, 8), np.uint8)]}
    probs = {"a": {"test": {False: _probs([0.9, 0.1]), True: _probs([0.9, 0.9])}},  # the winner misses image 2
             "b": {"test": {False: _probs([0.9, 0.95])}}}  # c and d could not be predicted
    chosen = choose(["a", "b", "c", "d"], CONFIGS, ensemble_k=3)
    rows = build_rows(chosen, CONFIGS, probs, tta=True)
    assert [r.label for r in rows] == ["winner", "top-2 ensemble", "winner + flip TTA", "top-2 ensemble + flip TTA",
                                       f"best {family_name('unet', 'conv')}",
                                       f"best {family_name('encoder_decoder', 'conv')}"]
    probs["b"]["test"][True] = _probs([0.9, 0.9])
    for row in rows:
        score_row(row, probs, truths)
    assert list(rows[0].dice["test"]) == [1.0, 0.0]  # 0.1 everywhere: nothing above 0.5 on a full polyp
    assert list(rows[1].dice["test"]) == [1.0, 1.0]  # the mean of 0.1 and 0.95 is above 0.5
    body = generalisation_body(rows, {"test": {"n_images": 2}}, JobConfig(ensemble_k=3))
    ensemble = body["rows"][1]["sets"]["test"]
    assert ensemble["dice"] == 1.0 and ensemble["vs_winner"]["mean_difference"] == pytest.approx(0.5)
    assert "vs_winner" not in body["rows"][0]["sets"]["test"]  # the winner is not paired with itself
    assert "vs_winner" not in body["rows"][-1]["sets"]["test"]  # nor is a family's best
    assert body["rows"][0]["per_image_dice"] == {"test": [1.0, 0.0]}


def test_no_rows_when_the_winner_could_not_be_predicted() -> None:
    assert build_rows(choose(["a", "b"], CONFIGS, 2), CONFIGS, {"b": {}}, tta=False) == []
