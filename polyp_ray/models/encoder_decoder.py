"""The notebook's plain encoder-decoder: the U-Net's conv encoder and decoder, without skip connections."""

from __future__ import annotations

import keras

from polyp_ray.models.blocks import decoder, image_input, sigmoid_head
from polyp_ray.models.encoders import conv_encoder


def build_encoder_decoder(image_size: int, base_width: int = 64, **_: object) -> keras.Model:
    image = image_input(image_size)
    features = conv_encoder(image, base_width)
    widths = [base_width * 2**i for i in range(4)]
    return keras.Model(image, sigmoid_head(decoder(features, widths, use_skips=False)), name="encoder_decoder")
