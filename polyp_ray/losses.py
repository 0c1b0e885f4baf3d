"""Segmentation losses, chosen by name: ``bce``, ``dice`` and the notebook's ``bce_dice``.

Keras is imported inside the functions so that validating a config (which checks loss names) stays
free of TensorFlow; a saved model finds these by name (polyp_ray.models.keras_objects registers them).
"""

from __future__ import annotations

from collections.abc import Callable

SMOOTH = 1e-6


def dice_loss(y_true, y_pred):
    """1 - soft Dice over the whole batch, with the notebook's squared terms in the denominator."""
    from keras import ops

    y_true = ops.cast(y_true, y_pred.dtype)
    intersection = ops.sum(y_true * y_pred)
    denominator = ops.sum(ops.square(y_true)) + ops.sum(ops.square(y_pred))
    return 1.0 - (2.0 * intersection + SMOOTH) / (denominator + SMOOTH)


def bce_loss(y_true, y_pred):
    import keras
    from keras import ops

    return ops.mean(keras.losses.binary_crossentropy(ops.cast(y_true, y_pred.dtype), y_pred))


def bce_dice_loss(y_true, y_pred):
    return bce_loss(y_true, y_pred) + dice_loss(y_true, y_pred)


LOSSES: dict[str, Callable] = {"bce": bce_loss, "dice": dice_loss, "bce_dice": bce_dice_loss}


def get_loss(name: str) -> Callable:
    if name not in LOSSES:
        raise KeyError(f"unknown loss {name!r}; known: {sorted(LOSSES)}")
    return LOSSES[name]
