"""A registry of encoders with their skip layers (the segmentation_models.pytorch pattern).

An encoder maps the [0, 1] image input to ``[skip1, skip2, skip3, skip4, bottleneck]``, each at half
the resolution of the one before, so any decoder can sit on any encoder.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import keras
from keras import layers, ops

from polyp_ray.errors import ConfigError
from polyp_ray.models.blocks import conv_block

VGG16_SKIPS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")
VGG16_NOTOP_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
# ImageNet means in BGR order, as keras.applications.vgg16.preprocess_input ("caffe" mode) uses.
VGG16_BGR_MEAN = (103.939, 116.779, 123.68)


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


@keras.saving.register_keras_serializable(package="polyp_ray")
class VGG16Preprocess(layers.Layer):
    """[0, 1] RGB -> VGG16's own input: 0-255 BGR minus the ImageNet mean (the notebook fed 0-1 RGB)."""

    def call(self, x):
        bgr = ops.flip(x * 255.0, axis=-1)
        return bgr - ops.convert_to_tensor(VGG16_BGR_MEAN, dtype=x.dtype)


def vgg16_encoder(image, weights: str = "none") -> list:
    vgg = keras.applications.VGG16(include_top=False, weights=None, input_shape=tuple(image.shape[1:]))
    path = resolve_vgg16_weights(weights)
    if path is not None:
        vgg.load_weights(str(path))
    encoder = keras.Model(vgg.input, [vgg.get_layer(n).output for n in VGG16_SKIPS], name="encoder")
    return list(encoder(VGG16Preprocess(name="vgg16_preprocess")(image)))


def resolve_vgg16_weights(weights: str) -> Path | None:
    """None for random init; the local .h5 for "imagenet" or a path; a clear error when it is absent."""
    if weights in ("none", ""):
        return None
    if weights != "imagenet":
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ConfigError(f"encoder_weights: {path}: weights file not found")
        return path
    candidates = [Path(os.environ["POLYP_RAY_VGG16_WEIGHTS"])] if "POLYP_RAY_VGG16_WEIGHTS" in os.environ else []
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    candidates.append(keras_home / "models" / VGG16_NOTOP_FILE)
    for path in candidates:
        if path.is_file():
            return path
    raise ConfigError(
        f"encoder_weights: imagenet: {VGG16_NOTOP_FILE} not found (looked in "
        f"{', '.join(str(c) for c in candidates)}); this machine cannot download it: copy the file there "
        "(or set POLYP_RAY_VGG16_WEIGHTS to its path), or set encoder_weights: none to train from scratch"
    )


# name -> (builder(image, base_width, weights), frozen-layer name or None)
ENCODERS: dict[str, tuple[Callable[..., list], str | None]] = {
    "conv": (lambda image, base_width, weights: conv_encoder(image, base_width), None),
    "vgg16": (lambda image, base_width, weights: vgg16_encoder(image, weights), "encoder"),
}
