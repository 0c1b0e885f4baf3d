"""VGG16 encoder (skips at block1_conv2 ... block4_conv3, bottleneck block5_conv3) + the U-Net decoder.

The encoder sees VGG16's own preprocessing of 0-255 pixels; weights are ImageNet (from a local file
only), none, or a local .h5 path. The decoder width is ``base_width`` (64 is the notebook's).
"""

from __future__ import annotations

import keras

from polyp_ray.models.blocks import decoder, image_input, sigmoid_head
from polyp_ray.models.encoders import vgg16_encoder


def build_vgg16_unet(image_size: int, base_width: int = 64, encoder_weights: str = "none", **_: object) -> keras.Model:
    image = image_input(image_size)
    features = vgg16_encoder(image, encoder_weights)
    widths = [base_width * 2**i for i in range(4)]
    return keras.Model(image, sigmoid_head(decoder(features, widths, use_skips=True)), name="vgg16_unet")
