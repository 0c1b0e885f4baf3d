"""The encoder registry (the segmentation_models.pytorch pattern): each backbone by name, with the layers
whose outputs feed the decoder, their channels and strides, its input preprocessing, and its ImageNet
weight file where one exists (polyp_ray.models.weights fetches it).

Plain data, free of TensorFlow, so config validation and the search-space loader can check names
without loading it; polyp_ray.models.backbones builds them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WeightsFile:
    """A keras.applications ImageNet "notop" file, as Keras itself fetches it."""

    file: str  # its name in the Keras cache (KERAS_HOME/models)
    origin: str  # Keras's public address
    file_hash: str | None  # Keras's pinned hash (32 hex: MD5, 64: SHA-256); None where Keras pins none


@dataclass(frozen=True)
class EncoderSpec:
    application: str | None  # the keras.applications constructor; None for the notebook's conv encoder
    skips: tuple[str, ...]  # layers whose outputs are the features, shallowest first; the last is the bottleneck
    strides: tuple[int, ...]  # input size / feature size, per feature
    channels: tuple[int, ...]  # per feature; for the conv encoder, multiples of base_width
    preprocess: str | None  # a mode of polyp_ray.models.layers.EncoderPreprocess
    weights: WeightsFile | None  # its ImageNet weights (encoder_weights: imagenet); None: there are none

    def feature_channels(self, base_width: int) -> tuple[int, ...]:
        return tuple(c * base_width for c in self.channels) if self.application is None else self.channels


# From keras/src/applications/{vgg16,resnet,efficientnet,mobilenet_v2}.py (Keras 3.x), include_top=False.
_TF = "https://storage.googleapis.com/tensorflow/keras-applications/"
_EFFICIENTNET = "https://storage.googleapis.com/keras-applications/"
CONV_STRIDES = (1, 2, 4, 8, 16)
APP_STRIDES = (2, 4, 8, 16, 32)  # smp's depth-5 encoders; the decoder adds one block to reach full size


def _efficientnet(name: str, skip_channels: tuple[int, ...], file_hash: str) -> EncoderSpec:
    # Features before each stride-2 stage (the expand activation of its first block), as smp's Keras
    # twin (qubvel/segmentation_models) takes them.
    skips = ("block2a_expand_activation", "block3a_expand_activation", "block4a_expand_activation",
             "block6a_expand_activation", "top_activation")
    file = f"{name.lower()}_notop.h5"
    return EncoderSpec(name, skips, APP_STRIDES, skip_channels, "scale255",
                       WeightsFile(file, f"{_EFFICIENTNET}{file}", file_hash))


ENCODERS: dict[str, EncoderSpec] = {
    "conv": EncoderSpec(None, ("enc1_b_relu", "enc2_b_relu", "enc3_b_relu", "enc4_b_relu", "center_b_relu"),
                        CONV_STRIDES, (2, 4, 8, 16, 32), None, None),
    "vgg16": EncoderSpec("VGG16", ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3"),
                         CONV_STRIDES, (64, 128, 256, 512, 512), "caffe",
                         WeightsFile("vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
                                     f"{_TF}vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
                                     "6d6bbae143d832006294945121d1f1fc")),
    "resnet50": EncoderSpec(
        "ResNet50", ("conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out"),
        APP_STRIDES, (64, 256, 512, 1024, 2048), "caffe",
        WeightsFile("resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
                    f"{_TF}resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
                    "4d473c1dd8becc155b73f8504c6f6626")),
    "efficientnetb0": _efficientnet("EfficientNetB0", (96, 144, 240, 672, 1280), "50bc09e76180e00e4465e1a485ddc09d"),
    "efficientnetb1": _efficientnet("EfficientNetB1", (96, 144, 240, 672, 1280), "74c4e6b3e1f6a1eea24c589628592432"),
    "efficientnetb2": _efficientnet("EfficientNetB2", (96, 144, 288, 720, 1408), "111f8e2ac8aa800a7a99e3239f7bfb39"),
    "efficientnetb3": _efficientnet("EfficientNetB3", (144, 192, 288, 816, 1536), "af6d107764bb5b1abb91932881670226"),
    "mobilenetv2": EncoderSpec(
        "MobileNetV2",
        ("block_1_expand_relu", "block_3_expand_relu", "block_6_expand_relu", "block_13_expand_relu", "out_relu"),
        APP_STRIDES, (96, 144, 192, 576, 1280), "tf",
        # alpha 1.0, rows 224: Keras's default (its file for any input size outside 96..224). The kernels
        # do not depend on the input size, so they load into an encoder of any image_size. Keras pins no
        # hash for MobileNetV2; a truncated download is still refused (Content-Length check).
        WeightsFile("mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
                    f"{_TF}mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5", None)),
}
