import h5py
import keras
import numpy as np
import pytest

from polyp_ray.errors import ConfigError
from polyp_ray.models import ENCODERS, MODELS, build_model, freezable, resolved_encoder, set_encoder_trainable
from polyp_ray.models.registry import family_name


def test_unet_matches_the_notebook_parameter_count() -> None:
    assert build_model("unet", 128, base_width=64).count_params() == 61_240_193


def test_vgg16_unet_matches_the_notebook_parameter_count() -> None:
    assert build_model("vgg16_unet", 128, base_width=64).count_params() == 28_037_057
    # the same model by its parts
    assert build_model("unet", 128, base_width=64, encoder="vgg16").count_params() == 28_037_057


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_maps_an_image_to_a_mask(name: str) -> None:
    model = build_model(name, 64, base_width=4)
    out = model.predict(np.random.default_rng(0).random((2, 64, 64, 3), dtype=np.float32), verbose=0)
    assert out.shape == (2, 64, 64, 1)
    assert 0.0 <= out.min() and out.max() <= 1.0


def _concats(model: keras.Model) -> list[str]:
    return [layer.name for layer in model.layers if isinstance(layer, keras.layers.Concatenate)]


def test_encoder_decoder_has_no_skip_connections() -> None:
    assert not _concats(build_model("encoder_decoder", 64, base_width=4))
    assert not _concats(build_model("encoder_decoder", 64, base_width=4, encoder="resnet50"))
    assert len(_concats(build_model("unet", 64, base_width=4))) == 4


# (encoder, the decoder blocks' filters at base_width 8, shallowest first, and the blocks a skip joins):
# the block at stride s has 8 * s filters whatever the encoder's own channels; an encoder whose first
# feature is at stride 2 gets a fifth block, to full resolution, without a skip.
DECODER_WIDTHS = [
    ("conv", [8, 16, 32, 64], {"dec1_concat", "dec2_concat", "dec3_concat", "dec4_concat"}),
    ("vgg16", [8, 16, 32, 64], {"dec1_concat", "dec2_concat", "dec3_concat", "dec4_concat"}),
    ("resnet50", [8, 16, 32, 64, 128], {"dec2_concat", "dec3_concat", "dec4_concat", "dec5_concat"}),
]


@pytest.mark.parametrize(("encoder", "widths", "skips"), DECODER_WIDTHS)
def test_decoder_width_follows_base_width_alone(encoder: str, widths: list[int], skips: set[str]) -> None:
    model = build_model("unet", 64, base_width=8, encoder=encoder)
    decoder = [layer for layer in model.layers if layer.name.startswith("dec") and layer.name.endswith("_b_conv")]
    assert sorted(layer.filters for layer in decoder) == widths
    assert set(_concats(model)) == skips
    assert model.output.shape == (None, 64, 64, 1)


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


def test_vgg16_weights_load_from_a_local_file(tmp_path) -> None:
    source = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path / "vgg.weights.h5"
    source.save_weights(str(path))
    model = build_model("vgg16_unet", 32, base_width=4, encoder_weights=str(path))
    loaded = model.get_layer("encoder").get_layer("block3_conv2").get_weights()[0]
    np.testing.assert_array_equal(loaded, source.get_layer("block3_conv2").get_weights()[0])
    with pytest.raises(ConfigError, match="missing.h5: weights file not found"):
        build_model("vgg16_unet", 32, base_width=4, encoder_weights=str(tmp_path / "missing.h5"))


def test_weights_of_another_architecture_are_refused(tmp_path) -> None:
    from keras.src.legacy.saving import legacy_h5_format

    path = tmp_path / "vgg16_notop.h5"  # the format of keras.applications' ImageNet files
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(
            f, keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3)))
    with pytest.raises(ConfigError) as err:
        build_model("unet", 32, base_width=4, encoder="mobilenetv2", encoder_weights=str(path))
    assert f"encoder_weights: {path}: not weights of a mobilenetv2 encoder (Layer count mismatch" in str(err.value)
    assert "\n" not in str(err.value)


def test_encoder_freezing() -> None:
    model = build_model("vgg16_unet", 32, base_width=4)
    total = len(model.trainable_weights)
    assert set_encoder_trainable(model, False)
    assert len(model.trainable_weights) == total - 26  # 13 conv layers x (kernel, bias)
    assert not set_encoder_trainable(build_model("unet", 32, base_width=4), False)


def test_names_resolve_without_building() -> None:
    assert resolved_encoder("vgg16_unet", "conv") == resolved_encoder("vgg16_unet", "vgg16") == "vgg16"
    assert resolved_encoder("unet", "resnet50") == "resnet50"
    assert resolved_encoder("encoder_decoder", "conv") == "conv"
    with pytest.raises(ValueError, match="model: unet, encoder: resnet50"):
        resolved_encoder("vgg16_unet", "resnet50")
    assert freezable("vgg16_unet", "conv") and freezable("encoder_decoder", "mobilenetv2")
    assert not freezable("unet", "conv") and not freezable("encoder_decoder", "conv")
    assert {e for e in ENCODERS if freezable("unet", e)} == set(ENCODERS) - {"conv"}


def test_families_are_decoder_and_encoder_together() -> None:
    assert family_name("unet", "conv") == "unet"
    assert family_name("encoder_decoder", float("nan")) == "encoder_decoder"
    assert family_name("unet", "resnet50") == "unet_resnet50" != family_name("encoder_decoder", "resnet50")
    assert family_name("unet", "vgg16") == family_name("vgg16_unet", "conv") == "vgg16_unet"
