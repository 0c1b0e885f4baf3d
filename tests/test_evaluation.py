"""The evaluation protocol: every trial is scored against the same original-size truth, whatever its
input size, and a polyp too small to survive the downsample still counts."""

import numpy as np
from PIL import Image

from polyp_ray.data.dataset import SplitArrays
from polyp_ray.evaluation import PROTOCOL, original_counts, score_split, upsample
from polyp_ray.metrics import per_image_scores, scores_from_counts
from polyp_ray.predict import full_size_mask


def _disk(height: int, width: int, cy: float, cx: float, radius: float) -> np.ndarray:
    yy, xx = np.mgrid[:height, :width]
    return (((yy + 0.5 - cy) ** 2 + (xx + 0.5 - cx) ** 2) <= radius**2).astype(np.uint8)


def _shrunk(mask: np.ndarray, size: int) -> np.ndarray:
    """A mask as the training pipeline shrinks it (bilinear, then > half)."""
    small = Image.fromarray(mask * 255).resize((size, size), Image.Resampling.BILINEAR)
    return (np.asarray(small) > 127).astype(np.uint8)


def _split(truth: np.ndarray, size: int) -> SplitArrays:
    images = np.zeros((1, size, size, 3), np.uint8)
    return SplitArrays(images, _shrunk(truth, size)[None, ..., None], ["frame"], truths=[truth])


def test_the_same_probabilities_at_two_trial_sizes_score_against_the_same_truth() -> None:
    truth = _disk(300, 360, 150, 180, 60)
    # The "same" prediction at two input sizes: a slightly too large disk, rendered at 64 and 128 px.
    predicted = _disk(300, 360, 150, 180, 66)
    scores = {}
    for size in (64, 128):
        probs = _shrunk(predicted, size)[None, ..., None].astype(np.float32)
        body = score_split(probs, _split(truth, size), 0.5)
        assert body["protocol"] == PROTOCOL
        assert (body["per_image"][0]["height"], body["per_image"][0]["width"]) == (300, 360)
        scores[size] = body["summary"]["dice"]
    expected = 2 * truth.sum() / (truth.sum() + predicted.sum())  # the disks are nested
    assert abs(scores[64] - expected) < 0.02 and abs(scores[128] - expected) < 0.02


def test_a_tiny_polyp_that_vanishes_at_a_small_size_still_counts() -> None:
    truth = np.zeros((480, 560), np.uint8)
    truth[200:204, 300:304] = 1  # 16 pixels: gone after shrinking to 32 px
    split = _split(truth, 32)
    assert split.masks.sum() == 0, "the test needs a polyp that the downsample loses"
    nothing = np.zeros((1, 32, 32, 1), np.float32)
    # Against the shrunk mask an empty prediction "finds" the empty truth ...
    assert per_image_scores(nothing, split.masks.astype(np.float32))["dice"][0] == 1.0
    # ... against the original mask it misses the polyp.
    body = score_split(nothing, split, 0.5)
    assert body["summary"]["dice"] == 0.0 and body["per_image"][0]["truth_fraction"] > 0


def test_empty_truth_and_empty_prediction_still_score_one_at_original_size() -> None:
    counts = original_counts(np.zeros((1, 32, 32, 1), np.float32), [np.zeros((90, 70), np.uint8)], 0.5)
    assert scores_from_counts(counts)["dice"][0] == 1.0
    assert counts[0, 3] == 90 * 70


def test_predict_writes_the_masks_the_evaluation_scores() -> None:
    prob = np.random.default_rng(0).random((32, 32), dtype=np.float32)
    np.testing.assert_array_equal(full_size_mask(prob, (75, 101), 0.5) > 0, upsample(prob, (75, 101)) > 0.5)
