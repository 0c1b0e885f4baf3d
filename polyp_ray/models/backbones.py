"""Builds the encoders of polyp_ray.models.encoders: image tensor in [0, 1] -> its features, shallowest
first, the bottleneck last."""

from __future__ import annotations

import keras
from keras import layers

from polyp_ray.errors import ConfigError
from polyp_ray.models import weights as weight_files
from polyp_ray.models.blocks import conv_block
from polyp_ray.models.encoders import ENCODERS
from polyp_ray.models.layers import BN_MOMENTUM, EncoderPreprocess

# keras.applications.efficientnet's ImageNet standard deviations (RGB).
EFFICIENTNET_IMAGENET_STDDEV = (0.229, 0.224, 0.225)


def build_encoder(name: str, image, base_width: int, weights: str = "none") -> list:
    spec = ENCODERS[name]
    if spec.application is None:
        return conv_encoder(image, base_width)
    backbone = getattr(keras.applications, spec.application)(
        include_top=False, weights=None, input_shape=tuple(image.shape[1:]))
    path = weight_files.resolve_weights(name, weights)
    if path is not None:
        _load(backbone, path, name)
        if weights == "imagenet" and spec.application.startswith("EfficientNet"):
            _match_efficientnet_imagenet_scaling(backbone)
    for layer in backbone.layers:
        if isinstance(layer, layers.BatchNormalization):
            # The same fast-settling statistics as our own blocks (see BN_MOMENTUM): with Keras's 0.99 a
            # random-init backbone still predicts from its initial statistics when ASHA first judges it.
            layer.momentum = BN_MOMENTUM
    assert spec.preprocess is not None  # every keras.applications entry names its preprocessing
    # A sub-model named "encoder": set_encoder_trainable freezes it as one layer.
    encoder = keras.Model(backbone.input, [backbone.get_layer(n).output for n in spec.skips], name="encoder")
    return list(encoder(EncoderPreprocess(spec.preprocess, name=f"{name}_preprocess")(image)))


def conv_encoder(image, base_width: int) -> list:
    """The notebook's U-Net encoder: four pooled conv blocks and a centre block, widths doubling."""
    features = []
    x = image
    for level in range(4):
        skip = conv_block(x, base_width * 2**level, f"enc{level + 1}")
        features.append(skip)
        x = layers.MaxPooling2D(name=f"enc{level + 1}_pool")(skip)
    features.append(conv_block(x, base_width * 16, "center"))
    return features


def _load(backbone: keras.Model, path, name: str) -> None:
    # By layer order, as keras.applications loads its own files: the backbone is built by the same
    # constructor, so every weighted layer lines up; a file for another architecture fails loudly here
    # rather than leaving a silently random encoder behind.
    try:
        backbone.load_weights(str(path))
    except (ValueError, KeyError) as err:
        first_line = str(err).strip().splitlines()[0]
        raise ConfigError(f"encoder_weights: {path}: not weights of a {name} encoder ({first_line})") from None


def _match_efficientnet_imagenet_scaling(backbone: keras.Model) -> None:
    """keras.applications adds a Rescaling(1 / sqrt(stddev)) after the Normalization layer only when it
    builds with weights="imagenet" (tensorflow/tensorflow#49930), and we build with weights=None.
    Dividing by sqrt(var) and then by sqrt(stddev) is dividing by sqrt(var * stddev): fold it in."""
    norm = next(layer for layer in backbone.layers if isinstance(layer, layers.Normalization))
    std = keras.ops.convert_to_tensor(EFFICIENTNET_IMAGENET_STDDEV, dtype=norm.adapt_variance.dtype)
    norm.adapt_variance.assign(norm.adapt_variance * std)
    norm.finalize_state()
