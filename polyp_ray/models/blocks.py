"""The notebook's building blocks as Keras 3 functional layers.

Written functionally (not as subclassed models) so BatchNorm follows Keras's training flag: the
notebook's subclassed blocks defaulted to ``training=True`` and so used batch statistics at inference.
"""

from __future__ import annotations

import keras
from keras import layers

# Keras's default momentum (0.99) needs hundreds of steps before the moving statistics used at
# inference are usable; ASHA judges trials after an epoch or two of a small dataset, so use 0.9.
BN_MOMENTUM = 0.9


@keras.saving.register_keras_serializable(package="polyp_ray")
class FusedBatchNormalization(layers.BatchNormalization):
    """Keras's BatchNormalization, run on TensorFlow's fused kernel for NHWC activations.

    Keras 3's layer is unfused: moments, then several element-wise ops (each with its gradient), in
    float32 even under mixed precision. The fused kernel (oneDNN's on CPU, cuDNN's on GPU) takes the
    bfloat16 activations directly; the notebook's U-Net trains 26% faster on a 2-core CPU
    (bench/README.md). Same weights and config as Keras's layer, so other backends (JAX) and other
    layouts use it unchanged. One difference: the moving variance averages the unbiased batch
    variance (n / (n - 1)), as Keras 2's fused layer did.
    """

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf  # only on the TensorFlow backend

        train = bool(training) and self.trainable
        outputs, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=inputs, scale=tf.convert_to_tensor(self.gamma), offset=tf.convert_to_tensor(self.beta),
            mean=tf.convert_to_tensor(self.moving_mean), variance=tf.convert_to_tensor(self.moving_variance),
            epsilon=self.epsilon, exponential_avg_factor=1.0 - self.momentum if train else 1.0,
            data_format="NHWC", is_training=train)
        if train:  # with exponential_avg_factor < 1 the kernel returns the updated moving statistics
            self.moving_mean.assign(mean)
            self.moving_variance.assign(variance)
        return outputs

    def _fusable(self, inputs, mask) -> bool:
        return (keras.backend.backend() == "tensorflow" and mask is None and len(inputs.shape) == 4
                and self.axis in (-1, 3) and self.scale and self.center and not getattr(self, "renorm", False))


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


def decoder(features: list, widths: list[int], use_skips: bool, name: str = "dec"):
    """Run the decoder from the deepest feature up; ``features`` is [skip1, ..., skip4, bottleneck]."""
    x = features[-1]
    skips = features[:-1]
    for level in range(len(widths), 0, -1):
        skip = skips[level - 1] if use_skips else None
        x = decoder_block(x, skip, widths[level - 1], f"{name}{level}")
    return x


def sigmoid_head(x):
    # float32 head: under mixed precision a bf16/fp16 sigmoid saturates and the loss goes unstable.
    return layers.Conv2D(1, 1, activation="sigmoid", dtype="float32", name="mask")(x)


def image_input(image_size: int) -> keras.KerasTensor:
    """Every model takes RGB in [0, 1]; encoders that expect other scales convert inside the model."""
    return keras.Input((image_size, image_size, 3), name="image")
