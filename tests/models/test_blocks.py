import keras
import numpy as np
import pytest

from polyp_ray.models.layers import BN_MOMENTUM, FusedBatchNormalization


def _pair(shape: tuple[int, ...]) -> tuple[keras.layers.Layer, keras.layers.Layer, np.ndarray]:
    x = np.random.default_rng(0).normal(2.0, 3.0, shape).astype(np.float32)
    fused = FusedBatchNormalization(momentum=BN_MOMENTUM)
    plain = keras.layers.BatchNormalization(momentum=BN_MOMENTUM)
    fused.build(x.shape)
    plain.build(x.shape)
    rng = np.random.default_rng(1)
    weights = [rng.normal(1.0, 0.2, (shape[-1],)).astype(np.float32) for _ in range(2)]
    weights += [rng.normal(0.0, 1.0, (shape[-1],)).astype(np.float32), np.full((shape[-1],), 2.0, np.float32)]
    fused.set_weights(weights)
    plain.set_weights(weights)
    return fused, plain, x


@pytest.mark.parametrize("training", [False, True])
def test_fused_batch_norm_matches_keras(training: bool) -> None:
    fused, plain, x = _pair((4, 8, 8, 5))
    out_fused = keras.ops.convert_to_numpy(fused(x, training=training))
    out_plain = keras.ops.convert_to_numpy(plain(x, training=training))
    np.testing.assert_allclose(out_fused, out_plain, atol=2e-5)
    if training:  # moving mean as Keras; moving variance with the unbiased batch variance (n / (n - 1))
        np.testing.assert_allclose(fused.moving_mean.numpy(), plain.moving_mean.numpy(), atol=1e-5)
        n = x.size // x.shape[-1]
        batch_var = x.reshape(-1, x.shape[-1]).var(axis=0)
        expected = BN_MOMENTUM * 2.0 + (1 - BN_MOMENTUM) * batch_var * n / (n - 1)
        np.testing.assert_allclose(fused.moving_variance.numpy(), expected, rtol=1e-4)


def test_fused_batch_norm_falls_back_to_keras_off_nhwc() -> None:
    fused, plain, x = _pair((4, 6, 5))  # rank 3: no fused kernel for it
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fused(x, training=True)),
                               keras.ops.convert_to_numpy(plain(x, training=True)), atol=2e-5)
    np.testing.assert_allclose(fused.moving_variance.numpy(), plain.moving_variance.numpy(), atol=1e-5)
