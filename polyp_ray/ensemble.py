"""Several models and mirrored views, one probability map: the top-k ensemble and flip test-time augmentation.

Members may take different input sizes (a search mixes 128 and 192 px trials), so they are averaged
where they agree on geometry: each member's probabilities are resized to the image's ORIGINAL size
(as the evaluation protocol does) and the mean is thresholded there. Flip TTA averages a model's
probabilities for the image and for its horizontal and vertical mirrors, each mirrored back.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from polyp_ray.evaluation import predict_probs, upsample
from polyp_ray.metrics import counts_of

FLIP_AXES = (2, 1)  # [N, H, W, C]: width (horizontal mirror), then height (vertical mirror)


@dataclass(frozen=True)
class Member:
    """One model of an ensemble and the square input size it takes."""

    model: Any
    image_size: int
    label: str = ""


def tta_probs(model: Any, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """The mean of the model's probabilities over the image and its two mirrors, mapped back."""
    total = predict_probs(model, images, batch_size)
    for axis in FLIP_AXES:
        mirrored = np.ascontiguousarray(np.flip(images, axis=axis))
        total += np.flip(predict_probs(model, mirrored, batch_size), axis=axis)
    return total / (1 + len(FLIP_AXES))


def member_probs(model: Any, images: np.ndarray, tta: bool, batch_size: int = 16) -> np.ndarray:
    return tta_probs(model, images, batch_size) if tta else predict_probs(model, images, batch_size)


def mean_original(per_member: Sequence[np.ndarray], shapes: Sequence[tuple[int, ...]]) -> Iterator[np.ndarray]:
    """Image by image: the members' probabilities, each resized to the image's original (height, width),
    averaged. ``per_member[k][i]`` is member k's map of image i at that member's own size."""
    if not per_member:
        raise ValueError("an ensemble needs at least one member")
    for i, shape in enumerate(shapes):
        total = np.zeros(shape[:2], dtype=np.float32)
        for probs in per_member:
            total += upsample(probs[i], shape)
        yield total / len(per_member)


def ensemble_counts(per_member: Sequence[np.ndarray], truths: Sequence[np.ndarray], threshold: float) -> np.ndarray:
    """Per-image pixel counts (metrics.py) of the members' mean probability against original-size truths."""
    for probs in per_member:
        if len(probs) != len(truths):
            raise ValueError(f"{len(probs)} predictions for {len(truths)} truths")
    means = mean_original(per_member, [t.shape[:2] for t in truths])
    return counts_of((m > threshold for m in means), (np.asarray(t) > 0 for t in truths))
