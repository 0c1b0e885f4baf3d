"""tf.data input pipelines over decoded uint8 arrays: seeded on-the-fly augmentation for training,
plain batches for evaluation; both prefetch with AUTOTUNE so the model never waits for input.

Augmentation is stateless and seeded per element, ``(seed, element counter)``, so a run is
reproducible from its seed whatever the thread interleaving, and image and mask always receive the
same geometric transform, in whole pixels, so masks stay exactly binary and aligned.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

# At aug_strength 1.0; the notebook's own setting (flip 0.5, +-5% shift) is about aug_strength 0.5.
MAX_SHIFT = 0.10  # fraction of the image side
MAX_HUE = 0.04
MAX_BRIGHTNESS = 0.15
MAX_CONTRAST = 0.30


def train_dataset(images, masks, batch_size: int, aug_strength: float, seed: int) -> tf.data.Dataset:
    """An endless, shuffled, augmented stream of (image float32 [0,1], mask float32 {0,1}) batches.

    ``images`` uint8 [N, S, S, 3] and ``masks`` uint8 {0,1} [N, S, S, 1], as arrays or tensors (pass
    tensors when building one stream per epoch, so the data is not copied again each time).
    """
    data = tf.data.Dataset.from_tensor_slices((images, masks))
    data = data.shuffle(int(images.shape[0]), seed=seed, reshuffle_each_iteration=True).repeat()
    data = data.enumerate()
    augment = make_augment(aug_strength, seed)
    data = data.map(augment, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return _untuned(data.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE))


def eval_images(images: np.ndarray, batch_size: int) -> tf.data.Dataset:
    data = tf.data.Dataset.from_tensor_slices(images)
    return _untuned(data.map(lambda x: tf.cast(x, tf.float32) / 255.0).batch(batch_size).prefetch(tf.data.AUTOTUNE))


def _untuned(data: tf.data.Dataset) -> tf.data.Dataset:
    """tf.data's autotuner off (AUTOTUNE then means fixed defaults): on 2 cores it competes with the
    training step for CPU, and ``fit``/``predict`` were measured blocking 0.5-13 s with the CPU idle
    when they dropped an autotuned iterator (bench/bench_training.py; figures in bench/README.md)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return data.with_options(options)


def _to_float(image: tf.Tensor, mask: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return tf.cast(image, tf.float32) / 255.0, tf.cast(mask, tf.float32)


def make_augment(strength: float, seed: int):
    """The per-element augmentation for ``strength`` in [0, 1] (0 returns the inputs unchanged).

    Flips and the shift run on the uint8 arrays and move whole pixels (pad + slice; the notebook's
    ``tfa.image.translate`` sampled nearest-neighbour, so it moved whole pixels too), then the colour
    jitter runs in float with TF's fused hue and contrast kernels. All random draws come from one
    stateless call: on 2 cores the per-op cost of tf.data's executor, not the arithmetic, bounds
    throughput (bench/bench_pipeline.py; figures in bench/README.md).
    """
    flip_p = min(0.5, strength)
    shift = MAX_SHIFT * strength
    lower = 1.0 - MAX_CONTRAST * strength

    def augment(counter: tf.Tensor, pair: tuple[tf.Tensor, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        if strength <= 0:
            return _to_float(*pair)
        image, mask = pair
        u = tf.random.stateless_uniform([7], tf.stack([tf.cast(seed, tf.int64), counter]))
        image, mask = _flip(image, mask, u[0] < flip_p, tf.image.flip_left_right)
        image, mask = _flip(image, mask, u[1] < flip_p, tf.image.flip_up_down)
        offset = tf.cast(tf.round((2.0 * u[2:4] - 1.0) * shift * tf.cast(tf.shape(image)[:2], tf.float32)), tf.int32)
        image, mask = _to_float(_shift(image, offset), _shift(mask, offset))
        image = tf.image.adjust_hue(image, (2.0 * u[4] - 1.0) * MAX_HUE * strength)
        image = image + (2.0 * u[5] - 1.0) * MAX_BRIGHTNESS * strength
        image = tf.image.adjust_contrast(image, lower + u[6] * (1.0 / lower - lower))
        return tf.clip_by_value(image, 0.0, 1.0), mask

    return augment


def _flip(image, mask, do: tf.Tensor, flip):
    return tf.cond(do, lambda: (flip(image), flip(mask)), lambda: (image, mask))


def _shift(x: tf.Tensor, offset: tf.Tensor) -> tf.Tensor:
    """``x`` [H, W, C] moved down by ``offset[0]`` and right by ``offset[1]`` whole pixels, zeros entering."""
    dy, dx = offset[0], offset[1]
    height, width = tf.shape(x)[0], tf.shape(x)[1]
    padded = tf.pad(x, [[tf.maximum(dy, 0), tf.maximum(-dy, 0)], [tf.maximum(dx, 0), tf.maximum(-dx, 0)], [0, 0]])
    top, left = tf.maximum(-dy, 0), tf.maximum(-dx, 0)
    return tf.ensure_shape(padded[top:top + height, left:left + width], x.shape)
