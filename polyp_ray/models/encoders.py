"""A registry of encoders with their skip layers (the segmentation_models.pytorch pattern).

An encoder maps the [0, 1] image input to ``[skip1, skip2, skip3, skip4, bottleneck]``, each at half
the resolution of the one before, so any decoder can sit on any encoder.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers, ops

from polyp_ray.models.blocks import conv_block
from polyp_ray.models.weights import resolve_vgg16_weights

VGG16_SKIPS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")
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


# name -> (builder(image, base_width, weights), frozen-layer name or None)
ENCODERS: dict[str, tuple[Callable[..., list], str | None]] = {
    "conv": (lambda image, base_width, weights: conv_encoder(image, base_width), None),
    "vgg16": (lambda image, base_width, weights: vgg16_encoder(image, weights), "encoder"),
}
