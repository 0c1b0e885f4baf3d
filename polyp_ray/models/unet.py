"""The notebook's U-Net: conv encoder, transposed-conv decoder with skips, sigmoid head.

At ``base_width=64`` and 128x128 it has exactly the notebook's 61,240,193 parameters.
"""

from __future__ import annotations

import keras

from polyp_ray.models.blocks import decoder, image_input, sigmoid_head
from polyp_ray.models.encoders import conv_encoder


def build_unet(image_size: int, base_width: int = 64, **_: object) -> keras.Model:
    image = image_input(image_size)
    features = conv_encoder(image, base_width)
    widths = [base_width * 2**i for i in range(4)]
    return keras.Model(image, sigmoid_head(decoder(features, widths, use_skips=True)), name="unet")
