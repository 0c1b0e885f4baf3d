"""tf.data input pipelines over decoded uint8 arrays: seeded on-the-fly augmentation for training,
plain batches for evaluation; both prefetch with AUTOTUNE so the model never waits for input.

Augmentation is stateless and seeded per element, ``(seed, element counter)``, so a run is
reproducible from its seed whatever the thread interleaving, and image and mask always receive the
same geometric transform (the mask with nearest-neighbour sampling).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from polyp_ray.data.dataset import SplitArrays

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


def eval_dataset(split: SplitArrays, batch_size: int) -> tf.data.Dataset:
    data = tf.data.Dataset.from_tensor_slices((split.images, split.masks))
    return _untuned(data.map(_to_float, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)
                    .prefetch(tf.data.AUTOTUNE))


def eval_images(images: np.ndarray, batch_size: int) -> tf.data.Dataset:
    data = tf.data.Dataset.from_tensor_slices(images)
    return _untuned(data.map(lambda x: tf.cast(x, tf.float32) / 255.0).batch(batch_size).prefetch(tf.data.AUTOTUNE))


def _untuned(data: tf.data.Dataset) -> tf.data.Dataset:
    """tf.data's autotuner off (AUTOTUNE then means fixed defaults): on 2 cores it competes with the
    training step for CPU, and ``fit``/``predict`` were measured blocking 0.5-13 s with the CPU idle
    when they dropped an autotuned iterator (bench/bench_training.py: batch 16 went 3.12 -> 4.32
    images/s for the notebook's U-Net)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return data.with_options(options)


def _to_float(image: tf.Tensor, mask: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return tf.cast(image, tf.float32) / 255.0, tf.cast(mask, tf.float32)


def make_augment(strength: float, seed: int):
    """The per-element augmentation for ``strength`` in [0, 1] (0 returns the inputs unchanged)."""
    flip_p = min(0.5, strength)
    shift = MAX_SHIFT * strength

    def augment(counter: tf.Tensor, pair: tuple[tf.Tensor, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        image, mask = _to_float(*pair)
        if strength <= 0:
            return image, mask
        seeds = tf.random.experimental.stateless_split(tf.stack([tf.cast(seed, tf.int64), counter]), 8)
        image, mask = _flip(image, mask, seeds[0], flip_p, tf.image.flip_left_right)
        image, mask = _flip(image, mask, seeds[1], flip_p, tf.image.flip_up_down)
        image, mask = _translate(image, mask, seeds[2], shift)
        image = tf.image.stateless_random_hue(image, MAX_HUE * strength, seeds[3])
        image = tf.image.stateless_random_brightness(image, MAX_BRIGHTNESS * strength, seeds[4])
        lower = 1.0 - MAX_CONTRAST * strength
        image = tf.image.stateless_random_contrast(image, lower, 1.0 / lower, seeds[5])
        return tf.clip_by_value(image, 0.0, 1.0), mask

    return augment


def _flip(image, mask, seed, probability: float, flip):
    do = tf.random.stateless_uniform([], seed) < probability
    return tf.cond(do, lambda: (flip(image), flip(mask)), lambda: (image, mask))


def _translate(image, mask, seed, fraction: float):
    """Shift both by the same random offset; TF core's projective transform (what tfa.translate wrapped)."""
    if fraction <= 0:
        return image, mask
    size = tf.cast(tf.shape(image)[:2], tf.float32)
    offset = tf.random.stateless_uniform([2], seed, -fraction, fraction) * size  # (dy, dx)
    transform = tf.stack([1.0, 0.0, -offset[1], 0.0, 1.0, -offset[0], 0.0, 0.0])[None]

    def warp(x: tf.Tensor, interpolation: str) -> tf.Tensor:
        out = tf.raw_ops.ImageProjectiveTransformV3(
            images=x[None], transforms=transform, output_shape=tf.shape(x)[:2], fill_value=0.0,
            interpolation=interpolation, fill_mode="CONSTANT",
        )
        return tf.ensure_shape(out[0], x.shape)

    return warp(image, "BILINEAR"), warp(mask, "NEAREST")
