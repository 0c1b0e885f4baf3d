"""Every custom layer our models contain, in one module, so whatever loads a saved model registers them
all by importing this one (polyp_ray.models.saving.load_model does).

Registered under the "polyp_ray" package: renaming a class or moving it to another package makes saved
checkpoints unloadable.
"""

from __future__ import annotations

import keras
from keras import layers, ops

# Keras's default momentum (0.99) needs hundreds of steps before the moving statistics used at
# inference are usable; ASHA judges trials after an epoch or two of a small dataset, so use 0.9.
BN_MOMENTUM = 0.9


@keras.saving.register_keras_serializable(package="polyp_ray")
class FusedBatchNormalization(layers.BatchNormalization):
    """Keras's BatchNormalization, run on TensorFlow's fused kernel for NHWC activations.

    Keras 3's layer is unfused: moments, then several element-wise ops (each with its gradient), in
    float32 even under mixed precision. The fused kernel (oneDNN's on CPU, cuDNN's on GPU) takes the
    bfloat16 activations directly, which trains the notebook's U-Net markedly faster on a CPU
    (bench/bench_training.py; figures in bench/README.md). Same weights and config as Keras's layer,
    so other backends (JAX) and other layouts use it unchanged. One difference: the moving variance
    averages the unbiased batch variance (n / (n - 1)), as Keras 2's fused layer did.
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


# ImageNet means in BGR order, as keras.applications' "caffe" preprocess_input (VGG16, ResNet50) uses.
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)

# mode -> what an encoder's keras.applications preprocess_input does to 0-255 RGB, applied here to the
# [0, 1] RGB every model takes. "caffe": BGR minus the ImageNet mean; "tf": [-1, 1] (MobileNetV2);
# "scale255": 0-255 unchanged, for EfficientNet, which rescales and normalises inside the backbone.
PREPROCESS_MODES = ("caffe", "tf", "scale255")


@keras.saving.register_keras_serializable(package="polyp_ray")
class EncoderPreprocess(layers.Layer):
    """[0, 1] RGB -> the input a pretrained backbone was trained on; inside the model, so training,
    validation, prediction and a loaded checkpoint can never disagree about it."""

    def __init__(self, mode: str, **kwargs):
        super().__init__(**kwargs)
        if mode not in PREPROCESS_MODES:
            raise ValueError(f"unknown preprocessing mode {mode!r}; known: {list(PREPROCESS_MODES)}")
        self.mode = mode

    def call(self, x):
        if self.mode == "tf":
            return x * 2.0 - 1.0
        if self.mode == "scale255":
            return x * 255.0
        bgr = ops.flip(x * 255.0, axis=-1)
        return bgr - ops.convert_to_tensor(CAFFE_BGR_MEAN, dtype=x.dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="polyp_ray")
class VGG16Preprocess(EncoderPreprocess):
    """The name vgg16_unet checkpoints written before EncoderPreprocess refer to; loads them as "caffe"."""

    def __init__(self, mode: str = "caffe", **kwargs):
        super().__init__(mode, **kwargs)
