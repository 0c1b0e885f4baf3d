"""Evaluation metrics on predicted probabilities, in NumPy (they run once per epoch, not per step).

Two families, kept apart on purpose:

- ``per_image_scores``: polyp Dice and IoU of each image at a threshold, then averaged over images.
  This is the protocol of the polyp-segmentation literature and what the search optimises.
- ``miou_2class``: the notebook's number: one confusion matrix pooled over every pixel, IoU of the
  background and of the polyp class, averaged over the two classes. Background dominates the pixels,
  so it reads much higher than the polyp IoU; it is reported only to set our results beside the
  notebook's 0.66.
"""

from __future__ import annotations

import numpy as np


def per_image_scores(probs: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> dict[str, np.ndarray]:
    """Per-image ``dice``, ``iou``, ``truth_fraction``, ``pred_fraction`` for [N, H, W, 1] inputs.

    An image with an empty truth and an empty prediction scores 1 (nothing to find, nothing found).
    """
    pred = probs.reshape(len(probs), -1) > threshold
    true = truth.reshape(len(truth), -1) > 0.5
    inter = np.sum(pred & true, axis=1, dtype=np.float64)
    p_sum = pred.sum(axis=1, dtype=np.float64)
    t_sum = true.sum(axis=1, dtype=np.float64)
    union = p_sum + t_sum - inter
    empty = (p_sum + t_sum) == 0
    dice = np.where(empty, 1.0, 2 * inter / np.maximum(p_sum + t_sum, 1))
    iou = np.where(empty, 1.0, inter / np.maximum(union, 1))
    pixels = pred.shape[1]
    return {"dice": dice, "iou": iou, "truth_fraction": t_sum / pixels, "pred_fraction": p_sum / pixels}


def confusion_2class(probs: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Pixel confusion matrix [[TN, FP], [FN, TP]] pooled over all images."""
    pred = probs.ravel() > threshold
    true = truth.ravel() > 0.5
    tp = int(np.sum(pred & true))
    fp = int(np.sum(pred & ~true))
    fn = int(np.sum(~pred & true))
    tn = pred.size - tp - fp - fn
    return np.array([[tn, fp], [fn, tp]], dtype=np.int64)


def miou_2class(confusion: np.ndarray) -> float:
    """The notebook's mean IoU over {background, polyp} from a pooled confusion matrix."""
    inter = np.diag(confusion).astype(np.float64)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - inter
    return float(np.mean(np.where(union > 0, inter / np.maximum(union, 1), 1.0)))


def summarise(probs: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    scores = per_image_scores(probs, truth, threshold)
    return {
        "dice": float(scores["dice"].mean()),
        "iou": float(scores["iou"].mean()),
        "miou_2class": miou_2class(confusion_2class(probs, truth, threshold)),
        "n_images": len(probs),
    }
