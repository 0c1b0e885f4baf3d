"""One model (a trial, or an ensemble's mean probability) on one set of images: its per-image scores and
the figures a table shows for it, shared by the generalisation step and whatever reports it.

A set's entry holds the mean Dice with its bootstrap CI, the mean IoU, the failure rates a mean hides
(median, share of images below Dice 0.1, share of empty predictions on images with a polyp) and the
literature's structure metrics (structure_metrics.py), all at each image's original resolution.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from polyp_ray.ensemble import mean_original
from polyp_ray.evaluation import score_maps
from polyp_ray.metrics import failure_rates, scores_from_counts
from polyp_ray.stats import bootstrap_ci
from polyp_ray.structure_metrics import StructureScores


@dataclass
class SetScores:
    per_image: dict[str, np.ndarray]  # dice, iou, truth_fraction, pred_fraction and the structure metrics
    curves: np.ndarray  # [N, 256] E_phi curves

    def entry(self) -> dict[str, Any]:
        dice = self.per_image["dice"]
        interval = bootstrap_ci(dice)
        rates = failure_rates(dice, self.per_image["pred_fraction"], self.per_image["truth_fraction"])
        structure = StructureScores({k: v for k, v in self.per_image.items() if k not in _COUNTED}, self.curves)
        return {"dice": interval.mean, "dice_low": interval.low, "dice_high": interval.high,
                "iou": float(np.mean(self.per_image["iou"])) if len(dice) else None, "n": interval.n,
                **rates, **structure.summary()}


_COUNTED = ("dice", "iou", "truth_fraction", "pred_fraction")


def score_members(per_member: Sequence[np.ndarray], truths: Sequence[np.ndarray], threshold: float) -> SetScores:
    """The members' mean probability (each resized to the image's original size) scored both ways."""
    for probs in per_member:
        if len(probs) != len(truths):
            raise ValueError(f"{len(probs)} predictions for {len(truths)} truths")
    maps = mean_original(per_member, [t.shape[:2] for t in truths])
    counts, structure = score_maps(maps, list(truths), threshold)
    return SetScores({**scores_from_counts(counts), **structure.per_image}, structure.curves)
