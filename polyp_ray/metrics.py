"""Evaluation metrics on binary predictions, in NumPy (they run once per epoch, not per step).

Two families, kept apart on purpose:

- per-image polyp Dice and IoU at a threshold, then averaged over images: the protocol of the
  polyp-segmentation literature and what the search optimises.
- ``miou_2class``: the notebook's number: one confusion matrix pooled over every pixel, IoU of the
  background and of the polyp class, averaged over the two classes. Background dominates the pixels,
  so it reads much higher than the polyp IoU; it is reported only to set our results beside the
  notebook's 0.66.

Both are computed from per-image pixel counts, so images of different sizes (each scored at its own
original geometry) pool correctly. The literature's structure metrics (S_alpha, E_phi, F^w_beta, MAE)
score the probability map itself, not a thresholded mask: structure_metrics.py.

``METRICS`` names every metric a job may rank trials by (``metric: val_<name>``), with its direction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Metric:
    name: str  # the key in test_metrics.json's summary; trials.csv has test_<name> and best_val_<name>
    label: str  # a table's column header
    mode: str  # "max" or "min": which way is better
    structure: bool  # scored on the probability map by pysodmetrics: ~50 ms an image, not microseconds
    text: str


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("dice", "Dice", "max", False, "per-image polyp Dice at the threshold, mean over images (mDice)"),
    Metric("iou", "IoU", "max", False, "per-image polyp IoU at the threshold, mean over images (mIoU)"),
    Metric("miou_2class", "2-class mIoU", "max", False,
           "the notebook's IoU of background and polyp from one confusion matrix pooled over all pixels"),
    Metric("wf_beta", "F^w_β", "max", True, "weighted F-measure (Margolin et al. 2014, β² = 1), mean over images"),
    Metric("s_alpha", "S_α", "max", True, "structure measure (Fan et al. 2017, α = 0.5), mean over images"),
    Metric("mean_e_phi", "mean E_φ", "max", True,
           "enhanced-alignment measure (Fan et al. 2018), mean over the 256 thresholds and the images"),
    Metric("max_e_phi", "max E_φ", "max", True,
           "E_φ at the best threshold of the set's mean E_φ curve (as the literature's toolbox reports it)"),
    Metric("mae", "MAE", "min", True, "mean absolute error of the probability map, mean over images"),
)}
STRUCTURE = tuple(name for name, m in METRICS.items() if m.structure)
LITERATURE = ("dice", "iou", "wf_beta", "s_alpha", "mean_e_phi", "max_e_phi", "mae")  # PraNet's Table 1 order
VAL_LOSS = "val_loss"


def job_metric(key: str) -> tuple[str, str]:
    """(name, mode) of a job's ``metric`` (``val_<name>`` or ``val_loss``); KeyError when unknown."""
    if key == VAL_LOSS:
        return "loss", "min"
    name = key.removeprefix("val_")
    if not key.startswith("val_") or name not in METRICS:
        raise KeyError(key)
    return name, METRICS[name].mode


def metric_direction(key: str, mode: str) -> tuple[str, str]:
    """(name, mode) of a job's ``metric`` and ``mode`` ("" for the metric's own); ValueError naming the key."""
    try:
        name, direction = job_metric(key)
    except KeyError:
        raise ValueError(f"metric: unknown metric {key!r}; known: {', '.join(job_metrics())}") from None
    if mode not in ("", direction):
        raise ValueError(f"mode: {key} is {'maximised' if direction == 'max' else 'minimised'}: "
                         f"set {direction} or leave mode out")
    return name, direction


def job_metrics() -> list[str]:
    return [f"val_{name}" for name in METRICS] + [VAL_LOSS]


FAILURE_DICE = 0.1  # an image scoring below this Dice is a failure: the polyp was essentially not found


def failure_rates(dice: np.ndarray, pred_fraction: np.ndarray, truth_fraction: np.ndarray) -> dict[str, float]:
    """What a mean hides: the median Dice, the share of images below ``FAILURE_DICE``, and the share of
    images with a polyp on which the model predicted nothing at all (None where no image has one)."""
    dice, pred, truth = (np.asarray(a, dtype=np.float64) for a in (dice, pred_fraction, truth_fraction))
    if not len(dice):
        return {"median": float("nan"), "failures": float("nan"), "empty_predictions": float("nan")}
    polyp = truth > 0
    empty = float(np.mean(pred[polyp] == 0)) if polyp.any() else float("nan")
    return {"median": float(np.median(dice)), "failures": float(np.mean(dice < FAILURE_DICE)),
            "empty_predictions": empty}


# Columns of a counts array: one row per image.
INTER, PRED, TRUE, PIXELS = range(4)


def image_counts(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """[intersection, predicted, true, pixels] of one image's boolean masks (any equal shapes)."""
    if pred.shape != true.shape:
        raise ValueError(f"prediction {pred.shape} and truth {true.shape} differ in shape")
    return np.array([np.count_nonzero(pred & true), np.count_nonzero(pred), np.count_nonzero(true), pred.size],
                    dtype=np.int64)


def scores_from_counts(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image ``dice``, ``iou``, ``truth_fraction``, ``pred_fraction`` from an [N, 4] counts array.

    An image with an empty truth and an empty prediction scores 1 (nothing to find, nothing found).
    """
    counts = np.asarray(counts, dtype=np.float64).reshape(-1, 4)
    inter, p_sum, t_sum, pixels = counts[:, INTER], counts[:, PRED], counts[:, TRUE], counts[:, PIXELS]
    empty = (p_sum + t_sum) == 0
    dice = np.where(empty, 1.0, 2 * inter / np.maximum(p_sum + t_sum, 1))
    iou = np.where(empty, 1.0, inter / np.maximum(p_sum + t_sum - inter, 1))
    return {"dice": dice, "iou": iou, "truth_fraction": t_sum / np.maximum(pixels, 1),
            "pred_fraction": p_sum / np.maximum(pixels, 1)}


def confusion_from_counts(counts: np.ndarray) -> np.ndarray:
    """Pixel confusion matrix [[TN, FP], [FN, TP]] pooled over all images."""
    total = np.asarray(counts, dtype=np.int64).reshape(-1, 4).sum(axis=0)
    tp, pred, true, pixels = total[INTER], total[PRED], total[TRUE], total[PIXELS]
    return np.array([[pixels - pred - true + tp, pred - tp], [true - tp, tp]], dtype=np.int64)


def miou_2class(confusion: np.ndarray) -> float:
    """The notebook's mean IoU over {background, polyp} from a pooled confusion matrix."""
    inter = np.diag(confusion).astype(np.float64)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - inter
    return float(np.mean(np.where(union > 0, inter / np.maximum(union, 1), 1.0)))


def summarise_counts(counts: np.ndarray) -> dict[str, float]:
    scores = scores_from_counts(counts)
    return {
        "dice": float(scores["dice"].mean()),
        "iou": float(scores["iou"].mean()),
        "miou_2class": miou_2class(confusion_from_counts(counts)),
        "n_images": len(scores["dice"]),
    }


def counts_of(preds: Iterable[np.ndarray], truths: Iterable[np.ndarray]) -> np.ndarray:
    """Counts of paired boolean masks (each pair one image, sizes may differ between images)."""
    rows = [image_counts(p, t) for p, t in zip(preds, truths, strict=True)]
    return np.stack(rows) if rows else np.zeros((0, 4), dtype=np.int64)


def per_image_scores(probs: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> dict[str, np.ndarray]:
    """Per-image scores of same-shaped [N, H, W, 1] probabilities and 0/1 truths."""
    return scores_from_counts(counts_of(probs > threshold, truth > 0.5))


def confusion_2class(probs: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    return confusion_from_counts(counts_of(probs > threshold, truth > 0.5))


def summarise(probs: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    return summarise_counts(counts_of(probs > threshold, truth > 0.5))
