"""The encoder registry (the segmentation_models.pytorch pattern): each backbone by name, with the layers
whose outputs feed the decoder, their channels and strides, its input preprocessing, and whether
ImageNet weights exist for it.

Plain data, free of TensorFlow, so config validation and the search-space loader can check names
without loading it; polyp_ray.models.backbones builds them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EncoderSpec:
    application: str | None  # the keras.applications constructor; None for the notebook's conv encoder
    skips: tuple[str, ...]  # layers whose outputs are the features, shallowest first; the last is the bottleneck
    strides: tuple[int, ...]  # input size / feature size, per feature
    channels: tuple[int, ...]  # per feature; for the conv encoder, multiples of base_width
    preprocess: str | None  # a mode of polyp_ray.models.layers.EncoderPreprocess
    imagenet: bool  # ImageNet weights exist (encoder_weights: imagenet)

    def feature_channels(self, base_width: int) -> tuple[int, ...]:
        return tuple(c * base_width for c in self.channels) if self.application is None else self.channels


CONV_STRIDES = (1, 2, 4, 8, 16)
APP_STRIDES = (2, 4, 8, 16, 32)  # smp's depth-5 encoders; the decoder adds one block to reach full size


def _efficientnet(name: str, skip_channels: tuple[int, ...]) -> EncoderSpec:
    # Features before each stride-2 stage (the expand activation of its first block), as smp's Keras
    # twin (qubvel/segmentation_models) takes them.
    skips = ("block2a_expand_activation", "block3a_expand_activation", "block4a_expand_activation",
             "block6a_expand_activation", "top_activation")
    return EncoderSpec(name, skips, APP_STRIDES, skip_channels, "scale255", True)


ENCODERS: dict[str, EncoderSpec] = {
    "conv": EncoderSpec(None, ("enc1_b_relu", "enc2_b_relu", "enc3_b_relu", "enc4_b_relu", "center_b_relu"),
                        CONV_STRIDES, (2, 4, 8, 16, 32), None, False),
    "vgg16": EncoderSpec("VGG16", ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3"),
                         CONV_STRIDES, (64, 128, 256, 512, 512), "caffe", True),
    "resnet50": EncoderSpec(
        "ResNet50", ("conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out"),
        APP_STRIDES, (64, 256, 512, 1024, 2048), "caffe", True),
    "efficientnetb0": _efficientnet("EfficientNetB0", (96, 144, 240, 672, 1280)),
    "efficientnetb1": _efficientnet("EfficientNetB1", (96, 144, 240, 672, 1280)),
    "efficientnetb2": _efficientnet("EfficientNetB2", (96, 144, 288, 720, 1408)),
    "efficientnetb3": _efficientnet("EfficientNetB3", (144, 192, 288, 816, 1536)),
    "mobilenetv2": EncoderSpec(
        "MobileNetV2",
        ("block_1_expand_relu", "block_3_expand_relu", "block_6_expand_relu", "block_13_expand_relu", "out_relu"),
        APP_STRIDES, (96, 144, 192, 576, 1280), "tf", True),
}
