"""The literature's metrics (S_alpha, E_phi, F^w_beta, MAE): each image scored at its original size on the
probability map, aggregated as pysodmetrics aggregates a set, and ranked in the metric's own direction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import py_sod_metrics as sod
import pytest

from polyp_ray.config import TrialConfig, load_job_config
from polyp_ray.data.dataset import PreparedData, SplitArrays
from polyp_ray.errors import ConfigError
from polyp_ray.evaluation import score_split, upsample
from polyp_ray.metrics import METRICS, STRUCTURE, failure_rates
from polyp_ray.set_scores import score_members
from polyp_ray.structure_metrics import image_structure
from polyp_ray.trial import _validate

SIZES = ((90, 120), (61, 47), (75, 75))  # original (height, width) of three images of one split


def _split() -> tuple[np.ndarray, SplitArrays]:
    """Smooth, different probability maps at a 32 px input size and each image's original mask."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:32, :32] / 31.0
    probs, truths = [], []
    for i, (height, width) in enumerate(SIZES):
        blob = np.exp(-(((yy - 0.3 - 0.2 * i) ** 2 + (xx - 0.5) ** 2) / 0.05))
        probs.append(np.clip(blob + 0.1 * rng.random((32, 32)), 0, 1).astype(np.float32))
        ty, tx = np.mgrid[:height, :width]
        truth = ((ty / height - 0.35 - 0.2 * i) ** 2 + (tx / width - 0.45) ** 2 < 0.04).astype(np.uint8)
        truths.append(truth)
    images = np.zeros((len(SIZES), 32, 32, 3), np.uint8)
    masks = np.zeros((len(SIZES), 32, 32, 1), np.uint8)
    return np.stack(probs)[..., None], SplitArrays(images, masks, [f"s{i}" for i in range(3)], truths)


def _reference(probs: np.ndarray, split: SplitArrays) -> dict[str, float]:
    """pysodmetrics's own evaluators over the set, on each map resized to its image's original size."""
    evaluators = {"s": sod.Smeasure(), "e": sod.Emeasure(), "w": sod.WeightedFmeasure(), "m": sod.MAE()}
    for prob, truth in zip(probs, split.truths or [], strict=True):
        for evaluator in evaluators.values():
            evaluator.step(upsample(prob, truth.shape).astype(np.float64), truth > 0, normalize=False)
    curve = evaluators["e"].get_results()["em"]["curve"]
    return {"s_alpha": evaluators["s"].get_results()["sm"], "wf_beta": evaluators["w"].get_results()["wfm"],
            "mae": evaluators["m"].get_results()["mae"], "mean_e_phi": float(np.mean(curve)),
            "max_e_phi": float(np.max(curve))}


def test_each_literature_metric_equals_pysodmetrics_at_original_resolution() -> None:
    probs, split = _split()
    body = score_split(probs, split, 0.5)
    expected = _reference(probs, split)
    assert set(expected) == set(STRUCTURE)
    for name, value in expected.items():
        assert body["summary"][name] == pytest.approx(value, abs=1e-4), name
    # Per image too, and the set's max E_phi is the best threshold of the mean curve, not a mean of maxima.
    maxima = [row["max_e_phi"] for row in body["per_image"]]
    assert body["summary"]["max_e_phi"] <= np.mean(maxima) + 1e-9
    for row, prob, truth in zip(body["per_image"], probs, split.truths or [], strict=True):
        single = sod.Smeasure()
        single.step(upsample(prob, truth.shape).astype(np.float64), truth > 0, normalize=False)
        assert row["s_alpha"] == pytest.approx(single.sms[0], abs=1e-4)


def test_hand_computed_values() -> None:
    """MAE and S_alpha where they have a closed form: a flat map on a mask, and on an empty truth."""
    truth = np.zeros((40, 50), bool)
    truth[10:20, 10:30] = True  # 10% of the pixels
    values, curve = image_structure(np.full((40, 50), 0.3), truth)
    assert values["mae"] == pytest.approx(0.3 * 0.9 + 0.7 * 0.1)
    assert curve.shape == (256,) and values["max_e_phi"] == pytest.approx(curve.max())
    empty, _ = image_structure(np.full((40, 50), 0.2), np.zeros((40, 50), bool))
    assert empty["s_alpha"] == pytest.approx(0.8) and empty["wf_beta"] == 0.0


class _FixedModel:
    """A stand-in with Keras's predict: the same probabilities whatever the input."""

    def __init__(self, probs: np.ndarray) -> None:
        self.probs = probs

    def predict(self, data, verbose: int = 0) -> np.ndarray:
        return self.probs


def test_per_epoch_validation_scores_structure_only_when_asked() -> None:
    probs, split = _split()
    data = PreparedData(info=None, image_size=32, splits={"val": split})  # type: ignore[arg-type]
    cheap = _validate(_FixedModel(probs), TrialConfig(image_size=32), data)
    assert "val_dice" in cheap and not any(f"val_{name}" in cheap for name in STRUCTURE)
    full = _validate(_FixedModel(probs), TrialConfig(image_size=32, val_structure=True), data)
    expected = score_split(probs, split, 0.5)["summary"]
    assert all(full[f"val_{name}"] == pytest.approx(expected[name]) for name in STRUCTURE)


def _job(tmp_path: Path, body: str) -> Path:
    (tmp_path / "space.yaml").write_text("model: {choices: [unet]}\n")
    path = tmp_path / "job.yaml"
    path.write_text("searchspace: space.yaml\n" + body)
    return path


def test_the_direction_follows_the_metric(tmp_path: Path) -> None:
    for name, metric in METRICS.items():
        job, _ = load_job_config(_job(tmp_path, f"metric: val_{name}\n"))
        assert job.mode == metric.mode and job.trial.val_structure == metric.structure
    assert load_job_config(_job(tmp_path, "metric: val_mae\n"))[0].mode == "min"
    assert load_job_config(_job(tmp_path, "metric: val_loss\n"))[0].mode == "min"
    with pytest.raises(ConfigError, match=r"job.yaml: mode: val_mae is minimised"):
        load_job_config(_job(tmp_path, "metric: val_mae\nmode: max\n"))
    with pytest.raises(ConfigError, match=r"metric: unknown metric 'val_sharpness'; known: .*val_s_alpha"):
        load_job_config(_job(tmp_path, "metric: val_sharpness\n"))


def test_a_set_entry_gives_the_failures_a_mean_hides() -> None:
    """Four images with a polyp: one found, one half found, one missed with an empty prediction, one
    missed with a false alarm elsewhere; the single model's entry equals its test evaluation."""
    truth = np.zeros((40, 40), np.uint8)
    truth[10:30, 10:30] = 1
    found = truth.astype(np.float32)
    half = found.copy()
    half[10:30, 20:30] = 0
    elsewhere = np.zeros_like(found)
    elsewhere[0:5, 0:5] = 1
    probs = np.stack([found, half, np.zeros_like(found), elsewhere])[..., None]
    truths = [truth] * 4
    entry = score_members([probs], truths, 0.5).entry()
    assert entry["dice"] == pytest.approx((1 + 2 / 3) / 4)
    assert entry["median"] == pytest.approx(1 / 3) and entry["failures"] == 0.5
    assert entry["empty_predictions"] == 0.25 and entry["n"] == 4
    split = SplitArrays(np.zeros((4, 40, 40, 3), np.uint8), probs.astype(np.uint8), list("abcd"), truths)
    summary = score_split(probs, split, 0.5)["summary"]
    assert all(entry[name] == pytest.approx(summary[name]) for name in ("dice", "iou", *STRUCTURE))
    rates = failure_rates(np.array([0.0, 1.0]), np.array([0.0, 0.2]), np.array([0.0, 0.2]))
    assert rates["empty_predictions"] == 0.0  # an empty prediction on an image with no polyp is right
