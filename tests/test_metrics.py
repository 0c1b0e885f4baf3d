import numpy as np

from polyp_ray.losses import LOSSES, bce_dice_loss, dice_loss, get_loss
from polyp_ray.metrics import confusion_2class, miou_2class, per_image_scores, summarise


def _mask(cells: list[tuple[int, int]], size: int = 4) -> np.ndarray:
    mask = np.zeros((size, size, 1), np.float32)
    for y, x in cells:
        mask[y, x, 0] = 1
    return mask


def test_per_image_dice_and_iou_by_hand() -> None:
    truth = np.stack([_mask([(0, 0), (0, 1)]), _mask([(1, 1)])])
    probs = np.stack([_mask([(0, 0), (3, 3)]) * 0.9, _mask([(1, 1)]) * 0.7])
    scores = per_image_scores(probs, truth, 0.5)
    np.testing.assert_allclose(scores["dice"], [2 * 1 / 4, 1.0])
    np.testing.assert_allclose(scores["iou"], [1 / 3, 1.0])
    np.testing.assert_allclose(scores["truth_fraction"], [2 / 16, 1 / 16])


def test_empty_truth_and_empty_prediction_score_one_and_misses_score_zero() -> None:
    empty = np.zeros((1, 4, 4, 1), np.float32)
    assert per_image_scores(empty, empty)["dice"][0] == 1.0
    assert per_image_scores(empty, _mask([(0, 0)])[None])["dice"][0] == 0.0


def test_per_image_average_differs_from_pooled() -> None:
    # One big polyp found, one small polyp missed: per-image averages weight the small one equally.
    big = _mask([(y, x) for y in range(4) for x in range(4)])
    small = _mask([(0, 0)])
    truth = np.stack([big, small])
    probs = np.stack([big, np.zeros_like(small)])
    assert summarise(probs, truth)["dice"] == 0.5


def test_notebook_two_class_miou_pools_pixels_with_background() -> None:
    truth = np.stack([_mask([(0, 0), (0, 1)])])
    probs = np.stack([_mask([(0, 0)])])
    confusion = confusion_2class(probs, truth)
    np.testing.assert_array_equal(confusion, [[14, 0], [1, 1]])
    assert miou_2class(confusion) == (14 / 15 + 1 / 2) / 2


def test_losses_by_name_and_values() -> None:
    assert set(LOSSES) == {"bce", "dice", "bce_dice"}
    truth = np.stack([_mask([(0, 0), (1, 1)])])
    assert float(dice_loss(truth, truth)) < 1e-6
    assert abs(float(dice_loss(truth, 1 - truth)) - 1.0) < 1e-6
    half = np.full_like(truth, 0.5)
    expected = float(get_loss("bce")(truth, half)) + float(dice_loss(truth, half))
    assert abs(float(bce_dice_loss(truth, half)) - expected) < 1e-6
    assert abs(float(get_loss("bce")(truth, half)) - np.log(2)) < 1e-4
