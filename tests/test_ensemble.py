"""Flip TTA and the ensemble's mean at original resolution, on small real Keras models."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from polyp_ray.ensemble import ensemble_counts, mean_original, member_probs, tta_probs
from polyp_ray.evaluation import original_counts, predict_probs, upsample


def _lopsided_model(size: int, seed: int) -> keras.Model:
    """A small conv net with random (not mirror-symmetric) kernels: its output changes under flips."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(4, 5, padding="same", activation="relu")(inputs)
    outputs = keras.layers.Conv2D(1, 5, padding="same", activation="sigmoid",
                                  kernel_initializer=keras.initializers.RandomNormal(stddev=2.0))(x)
    return keras.Model(inputs, outputs)


def _images(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_tta_maps_each_mirrored_prediction_back() -> None:
    model, images = _lopsided_model(32, 1), _images(3, 32)
    plain = predict_probs(model, images)
    mirrored = np.ascontiguousarray(images[:, :, ::-1])
    assert not np.allclose(predict_probs(model, mirrored)[:, :, ::-1], plain, atol=1e-3), "model is symmetric"
    # TTA of the mirrored image, mirrored back, is the mean of three views of the ORIGINAL image: a mirror
    # that was not mapped back (or mapped along the wrong axis) breaks the identity.
    np.testing.assert_allclose(tta_probs(model, mirrored)[:, :, ::-1], _h_v_mean(model, images), atol=1e-5)
    assert member_probs(model, images, False).shape == member_probs(model, images, True).shape == plain.shape


def _h_v_mean(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """TTA of a horizontally mirrored image, mapped back: the identity and the horizontal mirror swap,
    and the vertical mirror becomes the 180-degree rotation."""
    flipped_h = np.ascontiguousarray(images[:, :, ::-1])
    rotated = np.ascontiguousarray(images[:, ::-1, ::-1])
    return (predict_probs(model, flipped_h)[:, :, ::-1] + predict_probs(model, images)
            + predict_probs(model, rotated)[:, ::-1, ::-1]) / 3


def test_an_ensemble_of_one_scores_like_the_model_alone() -> None:
    model, images = _lopsided_model(32, 2), _images(4, 32, 1)
    truths = [np.random.default_rng(i).integers(0, 2, (40 + i, 50)).astype(np.uint8) for i in range(4)]
    probs = predict_probs(model, images)
    np.testing.assert_array_equal(ensemble_counts([probs], truths, 0.5), original_counts(probs, truths, 0.5))


def test_members_of_different_sizes_are_averaged_at_the_original_size() -> None:
    small, large = _lopsided_model(32, 3), _lopsided_model(64, 4)
    images = _images(2, 64, 2)
    p_small = predict_probs(small, images[:, ::2, ::2])
    p_large = predict_probs(large, images)
    shapes = [(75, 90), (48, 33)]
    means = list(mean_original([p_small, p_large], shapes))
    for i, shape in enumerate(shapes):
        assert means[i].shape == shape
        expected = (upsample(p_small[i], shape) + upsample(p_large[i], shape)) / 2
        np.testing.assert_allclose(means[i], expected, atol=1e-6)
    with pytest.raises(ValueError, match="predictions for"):
        ensemble_counts([p_small[:1], p_large], [np.zeros(s, np.uint8) for s in shapes], 0.5)
