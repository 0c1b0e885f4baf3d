"""The notebook's building blocks as Keras 3 functional layers (its custom layers are in layers.py).

Written functionally (not as subclassed models) so BatchNorm follows Keras's training flag: the
notebook's subclassed blocks defaulted to ``training=True`` and so used batch statistics at inference.
"""

from __future__ import annotations

import keras
from keras import layers

from polyp_ray.models.layers import BN_MOMENTUM, FusedBatchNormalization


def batch_norm(name: str) -> layers.BatchNormalization:
    return FusedBatchNormalization(momentum=BN_MOMENTUM, name=name)


def conv_bn_relu(x, filters: int, name: str):
    x = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv")(x)
    x = batch_norm(f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def conv_block(x, filters: int, name: str):
    """The notebook's ConvBlock: a conv to ``filters`` then one to twice as many."""
    x = conv_bn_relu(x, filters, f"{name}_a")
    return conv_bn_relu(x, filters * 2, f"{name}_b")


def decoder_block(x, skip, filters: int, name: str):
    """Transposed-conv upsampling (x2), optional skip concatenation, then two convs at ``filters``."""
    x = layers.Conv2DTranspose(filters, 3, strides=2, padding="same", name=f"{name}_up")(x)
    x = batch_norm(f"{name}_up_bn")(x)
    x = layers.ReLU(name=f"{name}_up_relu")(x)
    if skip is not None:
        x = layers.Concatenate(name=f"{name}_concat")([x, skip])
    x = conv_bn_relu(x, filters, f"{name}_a")
    return conv_bn_relu(x, filters, f"{name}_b")


def sigmoid_head(x):
    # float32 head: under mixed precision a bf16/fp16 sigmoid saturates and the loss goes unstable.
    return layers.Conv2D(1, 1, activation="sigmoid", dtype="float32", name="mask")(x)


def image_input(image_size: int) -> keras.KerasTensor:
    """Every model takes RGB in [0, 1]; encoders that expect other scales convert inside the model."""
    return keras.Input((image_size, image_size, 3), name="image")
