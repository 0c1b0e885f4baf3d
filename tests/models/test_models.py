import keras
import numpy as np
import pytest

from polyp_ray.errors import ConfigError
from polyp_ray.models import MODELS, build_model, set_encoder_trainable
from polyp_ray.models.weights import resolve_vgg16_weights


def test_unet_matches_the_notebook_parameter_count() -> None:
    assert build_model("unet", 128, base_width=64).count_params() == 61_240_193


def test_vgg16_unet_matches_the_notebook_parameter_count() -> None:
    assert build_model("vgg16_unet", 128, base_width=64).count_params() == 28_037_057


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_maps_an_image_to_a_mask(name: str) -> None:
    model = build_model(name, 64, base_width=4)
    out = model.predict(np.random.default_rng(0).random((2, 64, 64, 3), dtype=np.float32), verbose=0)
    assert out.shape == (2, 64, 64, 1)
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_encoder_decoder_has_no_skip_connections() -> None:
    plain = build_model("encoder_decoder", 64, base_width=4)
    unet = build_model("unet", 64, base_width=4)
    assert not [layer for layer in plain.layers if isinstance(layer, keras.layers.Concatenate)]
    assert len([layer for layer in unet.layers if isinstance(layer, keras.layers.Concatenate)]) == 4


def test_batchnorm_uses_moving_statistics_at_inference() -> None:
    # The notebook's blocks defaulted to training=True: an image's prediction then depended on
    # the other images in its batch. Ours must not.
    model = build_model("unet", 32, base_width=4)
    rng = np.random.default_rng(1)
    image = rng.random((1, 32, 32, 3), dtype=np.float32)
    alone = model(image, training=False)
    with_others = model(np.concatenate([image, rng.random((3, 32, 32, 3), dtype=np.float32) * 5]), training=False)
    np.testing.assert_allclose(alone[0], with_others[0], atol=1e-5)
    trained = model(np.concatenate([image, image * 5]), training=True)
    assert not np.allclose(alone[0], trained[0], atol=1e-3)


def test_vgg16_preprocessing_is_applied_inside_the_model() -> None:
    model = build_model("vgg16_unet", 32, base_width=4)
    preprocess = model.get_layer("vgg16_preprocess")
    white = np.ones((1, 2, 2, 3), np.float32)
    out = keras.ops.convert_to_numpy(preprocess(white))
    np.testing.assert_allclose(out[0, 0, 0], [255 - 103.939, 255 - 116.779, 255 - 123.68], rtol=1e-5)


def test_missing_imagenet_weights_say_where_to_put_them(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv("POLYP_RAY_VGG16_WEIGHTS", raising=False)
    with pytest.raises(ConfigError) as err:
        resolve_vgg16_weights("imagenet")
    message = str(err.value)
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert str(tmp_path / "models") in message and "encoder_weights: none" in message


def test_vgg16_weights_load_from_a_local_file(tmp_path) -> None:
    source = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path / "vgg.weights.h5"
    source.save_weights(str(path))
    model = build_model("vgg16_unet", 32, base_width=4, encoder_weights=str(path))
    loaded = model.get_layer("encoder").get_layer("block3_conv2").get_weights()[0]
    np.testing.assert_array_equal(loaded, source.get_layer("block3_conv2").get_weights()[0])
    with pytest.raises(ConfigError, match="missing.h5: weights file not found"):
        build_model("vgg16_unet", 32, base_width=4, encoder_weights=str(tmp_path / "missing.h5"))


def test_encoder_freezing() -> None:
    model = build_model("vgg16_unet", 32, base_width=4)
    total = len(model.trainable_weights)
    assert set_encoder_trainable(model, False)
    assert len(model.trainable_weights) == total - 26  # 13 conv layers x (kernel, bias)
    assert not set_encoder_trainable(build_model("unet", 32, base_width=4), False)
