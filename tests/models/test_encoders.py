"""Every registered encoder builds as its registry entry says, trains, checkpoints, freezes, and sees the
input its keras.applications backbone was trained on."""

import subprocess
import sys
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from polyp_ray.config import TrialConfig
from polyp_ray.errors import ConfigError
from polyp_ray.models import ENCODERS, build_model, set_encoder_trainable
from polyp_ray.models.layers import EncoderPreprocess
from polyp_ray.models.saving import load_model, save_checkpoint_model

# The EfficientNets past b0 are b0's code and layers at other widths and depths: what differs, their registry
# entries (skips, strides, channels), is checked for every encoder; training and checkpointing once, on b0.
HEAVY = {"efficientnetb1", "efficientnetb2", "efficientnetb3"}
ALL = [e for e in ENCODERS if e not in HEAVY]
SIZE = 64
SPACES = Path(__file__).resolve().parents[2] / "searchspace"


def _images(n: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, SIZE, SIZE, 3), dtype=np.float32)


def _feature_layer(model: keras.Model, encoder: str, skip: str) -> keras.layers.Layer:
    owner = model if ENCODERS[encoder].application is None else model.get_layer("encoder")
    return owner.get_layer(skip)


@pytest.mark.parametrize("encoder", list(ENCODERS))
def test_features_have_the_registered_strides_and_channels(encoder: str) -> None:
    spec = ENCODERS[encoder]
    model = build_model("unet", SIZE, base_width=4, encoder=encoder)
    shapes = [tuple(_feature_layer(model, encoder, skip).output.shape[1:]) for skip in spec.skips]
    assert shapes == [(SIZE // s, SIZE // s, c) for s, c in zip(spec.strides, spec.feature_channels(4), strict=True)]


@pytest.mark.parametrize("encoder", ALL)
def test_trains_a_step_and_round_trips_a_checkpoint(encoder: str, tmp_path) -> None:
    model = build_model("unet", SIZE, base_width=4, encoder=encoder)
    x = _images()
    before = [w.copy() for w in model.get_weights()]
    # Eager: tracing the train step of a ResNet or an EfficientNet takes 20-40 s on 2 cores and tests
    # nothing of ours (a conv U-Net trains traced in test_saving.py, every trial trains traced).
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy", run_eagerly=True)
    history = model.fit(x, (x[..., :1] > 0.5).astype(np.float32), batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    changed = [not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True)]
    assert sum(changed) > len(changed) // 2  # encoder and decoder both trained
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    save_checkpoint_model(model, tmp_path)
    loaded = load_model(tmp_path / "model")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x, training=False)), expected, atol=1e-6)


def test_preprocessing_gives_the_documented_values() -> None:
    pixels = np.array([[[[1.0, 0.0, 0.5], [0.0, 1.0, 0.0]]]], np.float32)  # RGB in [0, 1]
    caffe = keras.ops.convert_to_numpy(EncoderPreprocess("caffe")(pixels))[0, 0]
    np.testing.assert_allclose(caffe, [[127.5 - 103.939, -116.779, 255 - 123.68], [-103.939, 255 - 116.779, -123.68]],
                               rtol=1e-5)  # BGR, 0-255, minus the ImageNet mean
    tf_mode = keras.ops.convert_to_numpy(EncoderPreprocess("tf")(pixels))[0, 0]
    np.testing.assert_allclose(tf_mode, [[1.0, -1.0, 0.0], [-1.0, 1.0, -1.0]])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(EncoderPreprocess("scale255")(pixels))[0, 0],
                               pixels[0, 0] * 255)
    with pytest.raises(ValueError, match="unknown preprocessing mode 'torch'"):
        EncoderPreprocess("torch")


def test_vgg16_checkpoints_from_before_the_encoder_registry_still_load_their_preprocessing() -> None:
    saved = {"module": "polyp_ray.models.encoders", "class_name": "VGG16Preprocess", "registered_name":
             "polyp_ray>VGG16Preprocess", "config": {"name": "vgg16_preprocess", "trainable": True, "dtype": "float32"}}
    layer = keras.saving.deserialize_keras_object(saved)
    assert isinstance(layer, EncoderPreprocess) and layer.mode == "caffe"


PREPROCESS_INPUT = {"vgg16": keras.applications.vgg16.preprocess_input,
                    "resnet50": keras.applications.resnet50.preprocess_input,
                    "mobilenetv2": keras.applications.mobilenet_v2.preprocess_input,
                    "efficientnetb0": keras.applications.efficientnet.preprocess_input}


@pytest.mark.filterwarnings("ignore:`input_shape` is undefined or non-square:UserWarning")  # MobileNetV2 at 64 px
@pytest.mark.parametrize("encoder", sorted(PREPROCESS_INPUT))
def test_imagenet_encoder_sees_what_keras_applications_feeds_it(encoder: str, tmp_path, monkeypatch) -> None:
    """Our [0, 1] model with encoder_weights=imagenet computes what keras.applications' own
    weights="imagenet" backbone computes on preprocess_input(0-255 image): preprocessing, weight loading
    and EfficientNet's extra ImageNet rescaling all included. The "ImageNet" file here is a random one
    in Keras's .h5 format (this machine cannot download the real one)."""
    from keras.src.legacy.saving import legacy_h5_format
    from keras.src.utils import file_utils

    constructor = getattr(keras.applications, ENCODERS[encoder].application)
    source = constructor(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3))
    rng = np.random.default_rng(0)
    for layer in source.layers:
        if isinstance(layer, keras.layers.Normalization):  # EfficientNet: ImageNet statistics, not identity
            layer.set_weights([np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225]) ** 2, np.array(0)])
        elif isinstance(layer, keras.layers.BatchNormalization):  # moving statistics that matter
            layer.set_weights([w + rng.uniform(0.1, 0.5, w.shape) for w in layer.get_weights()])
    path = tmp_path / "notop.h5"
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, source)
    monkeypatch.setattr(file_utils, "get_file", lambda *args, **kwargs: str(path))
    reference = constructor(include_top=False, weights="imagenet", input_shape=(SIZE, SIZE, 3))
    monkeypatch.setattr("polyp_ray.models.weights.resolve_weights",
                        lambda name, weights: path if (name, weights) == (encoder, "imagenet") else None)
    model = build_model("unet", SIZE, base_width=4, encoder=encoder, encoder_weights="imagenet")

    x = _images()
    ours = model.get_layer("encoder")(model.get_layer(f"{encoder}_preprocess")(x), training=False)[-1]
    bottleneck = keras.Model(reference.input, reference.get_layer(ENCODERS[encoder].skips[-1]).output)
    theirs = keras.ops.convert_to_numpy(bottleneck(PREPROCESS_INPUT[encoder](x * 255.0), training=False))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours), theirs, rtol=1e-4, atol=1e-4 * np.abs(theirs).max())


@pytest.mark.parametrize("encoder", ["mobilenetv2", "resnet50"])
def test_a_frozen_encoder_does_not_change_in_a_training_step(encoder: str) -> None:
    model = build_model("unet", SIZE, base_width=4, encoder=encoder)
    backbone = model.get_layer("encoder")
    trainable, in_backbone = len(model.trainable_weights), len(backbone.trainable_weights)
    assert set_encoder_trainable(model, False)
    assert len(model.trainable_weights) == trainable - in_backbone
    frozen_before = [w.copy() for w in backbone.get_weights()]  # BatchNorm's moving statistics included
    decoder_before = model.get_layer("dec1_b_conv").get_weights()[0].copy()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy", run_eagerly=True)
    x = _images(4)
    model.fit(x, (x[..., :1] > 0.5).astype(np.float32), batch_size=4, epochs=1, verbose=0)
    for before, after in zip(frozen_before, backbone.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    assert not np.array_equal(decoder_before, model.get_layer("dec1_b_conv").get_weights()[0])
    set_encoder_trainable(model, True)
    assert len(model.trainable_weights) == trainable


def test_an_unknown_encoder_is_a_one_line_config_error() -> None:
    with pytest.raises(ConfigError) as err:
        TrialConfig(encoder="resnet18").validate("job.yaml")
    assert str(err.value).startswith("job.yaml: encoder: unknown encoder 'resnet18'; known: [")
    assert "efficientnetb3" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r"^job\.yaml: encoder: model vgg16_unet is the unet decoder on vgg16"):
        TrialConfig(model="vgg16_unet", encoder="resnet50").validate("job.yaml")
    TrialConfig(model="vgg16_unet", encoder="vgg16").validate("job.yaml")


def test_checking_names_does_not_load_tensorflow() -> None:
    code = ("import sys; from polyp_ray.config import TrialConfig; from polyp_ray.models import freezable; "
            "TrialConfig(model='encoder_decoder', encoder='efficientnetb2').validate('x'); "
            "assert freezable('unet', 'mobilenetv2'); "
            "print(sorted(m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_kvasir_space_samples_every_encoder_fairly() -> None:
    import optuna

    from polyp_ray.models import freezable
    from polyp_ray.searchspace import load_searchspace

    space = load_searchspace(SPACES / "kvasir.yaml")
    assert set(space.possible("encoder", "conv")) == set(ENCODERS)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(60):
        trial = study.ask()
        space.define_by_run(trial)
        params = trial.params
        seen.add(params["encoder"])
        assert "base_width" in params  # the decoder width is searched for every encoder
        assert ("freeze_encoder_epochs" in params) == freezable(params["model"], params["encoder"])
        study.tell(trial, 0.0)
    assert seen == set(ENCODERS)
    notebook = load_searchspace(SPACES / "notebook.yaml")
    assert notebook.possible("model", "unet") == ["unet", "vgg16_unet"]
