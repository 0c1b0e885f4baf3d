import numpy as np
import pytest

from polyp_ray.data.dataset import SplitArrays
from polyp_ray.data.pipeline import eval_images, train_dataset


def _marked_split(n: int = 6, size: int = 32) -> SplitArrays:
    """Images whose red channel is exactly 255 where the mask is 1 and 0 elsewhere."""
    rng = np.random.default_rng(0)
    masks = np.zeros((n, size, size, 1), np.uint8)
    for i in range(n):
        y, x = rng.integers(2, size // 2, 2)
        masks[i, y: y + 10, x: x + 7] = 1
    images = np.zeros((n, size, size, 3), np.uint8)
    images[..., 0] = masks[..., 0] * 255
    images[..., 1] = 128
    return SplitArrays(images, masks, [str(i) for i in range(n)])


def _batches(split: SplitArrays, strength: float, seed: int, count: int = 3):
    stream = train_dataset(split.images, split.masks, 2, strength, seed)
    return [(x.numpy(), y.numpy()) for x, y in stream.take(count)]


def test_image_and_mask_get_the_same_geometric_transform() -> None:
    for images, masks in _batches(_marked_split(), strength=1.0, seed=7, count=6):
        red_is_polyp = images[..., 0] > 0.5
        # Whole-pixel geometry: every pixel of image and mask must still coincide.
        np.testing.assert_array_equal(red_is_polyp, masks[..., 0] > 0.5)


def test_masks_stay_binary_and_images_in_range() -> None:
    for images, masks in _batches(_marked_split(), strength=1.0, seed=1):
        assert set(np.unique(masks)) <= {0.0, 1.0}
        assert images.min() >= 0.0 and images.max() <= 1.0
        assert images.dtype == np.float32


def test_reproducible_from_seed_and_different_across_seeds() -> None:
    split = _marked_split()
    first, again, other = _batches(split, 1.0, 5), _batches(split, 1.0, 5), _batches(split, 1.0, 6)
    for (a, am), (b, bm) in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(am, bm)
    assert any(not np.array_equal(a, c) for (a, _), (c, _) in zip(first, other, strict=True))


def test_strength_zero_is_identity_up_to_scaling() -> None:
    split = _marked_split()
    seen = {}
    for images, masks in _batches(split, 0.0, 3, count=3):
        for image, mask in zip(images, masks, strict=True):
            seen[image.tobytes()] = mask
    originals = {(split.images[i] / 255.0).astype(np.float32).tobytes() for i in range(len(split))}
    assert set(seen) <= originals


def test_eval_images_keeps_order_and_scale() -> None:
    split = _marked_split(n=5)
    images = np.concatenate([x.numpy() for x in eval_images(split.images, 2)])
    np.testing.assert_allclose(images, split.images / 255.0, atol=1e-6)


@pytest.mark.parametrize("strength", [0.3, 1.0])
def test_augmentation_changes_images(strength: float) -> None:
    split = _marked_split()
    originals = {(split.images[i] / 255.0).astype(np.float32).tobytes() for i in range(len(split))}
    changed = [img.tobytes() not in originals for images, _ in _batches(split, strength, 2, 4) for img in images]
    assert sum(changed) >= len(changed) // 2
