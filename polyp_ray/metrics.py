"""Evaluation metrics on binary predictions, in NumPy (they run once per epoch, not per step).

Two families, kept apart on purpose:

- per-image polyp Dice and IoU at a threshold, then averaged over images: the protocol of the
  polyp-segmentation literature and what the search optimises.
- ``miou_2class``: the notebook's number: one confusion matrix pooled over every pixel, IoU of the
  background and of the polyp class, averaged over the two classes. Background dominates the pixels,
  so it reads much higher than the polyp IoU; it is reported only to set our results beside the
  notebook's 0.66.

Both are computed from per-image pixel counts, so images of different sizes (each scored at its own
original geometry) pool correctly.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

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
