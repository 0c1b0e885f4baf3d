"""Score a model on one split the way the literature does, and write image | truth | prediction PNGs.

The protocol, the same for every trial of a search whatever its input size: the model's probabilities
are resized (bilinear) to each image's ORIGINAL mask size, thresholded, and scored against the original
mask binarised once (``SplitArrays.truths``). Scoring against masks shrunk to each trial's own input
size would rank a 128 px and a 256 px trial against different ground truths, and a small polyp that
vanished in the downsample would become an empty truth that an empty prediction "finds" with Dice 1.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from polyp_ray.data.dataset import SplitArrays
from polyp_ray.data.sources import source_of
from polyp_ray.experiment import TrialFiles
from polyp_ray.metrics import counts_of, image_counts, scores_from_counts, summarise_counts
from polyp_ray.structure_metrics import StructureScores, structure_scores

PROTOCOL = "original_resolution"
VAL_PER_IMAGE = "val_per_image"  # test_metrics.json's key of a search's checkpoint's per-image validation scores
PROTOCOL_TEXT = ("per-image polyp Dice/IoU at each image's original resolution: probabilities resized "
                 "(bilinear) to the original mask size, thresholded, scored against the original mask "
                 "binarised once; S_alpha, E_phi, F^w_beta and MAE on the resized probabilities; the mean "
                 "over images")


def predict_probs(model: Any, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Sigmoid probabilities [N, S, S, 1] as float32 for uint8 images [N, S, S, 3]."""
    from polyp_ray.data.pipeline import eval_images

    if len(images) == 0:
        return np.zeros((0, *images.shape[1:3], 1), dtype=np.float32)
    return np.asarray(model.predict(eval_images(images, batch_size), verbose=0), dtype=np.float32)


def upsample(prob: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A [S, S] (or [S, S, 1]) probability map resized to (height, width): smooth borders at any scale."""
    height, width = shape[:2]
    prob = np.asarray(prob, dtype=np.float32).reshape(prob.shape[:2])
    if prob.shape == (height, width):
        return prob
    return np.asarray(Image.fromarray(prob, mode="F").resize((width, height), Image.Resampling.BILINEAR))


def original_counts(probs: np.ndarray, truths: list[np.ndarray], threshold: float) -> np.ndarray:
    """Per-image pixel counts of ``probs`` against the original-size ``truths`` (see metrics.py)."""
    if len(probs) != len(truths):
        raise ValueError(f"{len(probs)} predictions for {len(truths)} truths")
    preds = (upsample(p, t.shape) > threshold for p, t in zip(probs, truths, strict=True))
    return counts_of(preds, (np.asarray(t) > 0 for t in truths))


def score_maps(maps: Iterable[np.ndarray], truths: list[np.ndarray], threshold: float,
               structure: bool = True) -> tuple[np.ndarray, StructureScores]:
    """Pixel counts and (``structure``) the structure metrics of original-size probability maps, one
    pass: each map is made once (a resize, or an ensemble's mean) and scored both ways."""
    counts, kept = [], []
    for prob, truth in zip(maps, truths, strict=True):
        counts.append(image_counts(prob > threshold, np.asarray(truth) > 0))
        if structure:
            kept.append(prob)
    stacked = np.stack(counts) if counts else np.zeros((0, 4), dtype=np.int64)
    return stacked, (structure_scores(kept, [np.asarray(t) > 0 for t in truths]) if structure
                     else StructureScores())


def resized_maps(probs: np.ndarray, truths: list[np.ndarray]) -> Iterator[np.ndarray]:
    """Each probability map resized to its image's original size."""
    if len(probs) != len(truths):
        raise ValueError(f"{len(probs)} predictions for {len(truths)} truths")
    return (upsample(p, t.shape) for p, t in zip(probs, truths, strict=True))


def truths_of(split: SplitArrays) -> list[np.ndarray]:
    if split.truths is None:
        raise ValueError("this split carries no original-size truths (only val and test do)")
    return split.truths


def score_split(probs: np.ndarray, split: SplitArrays, threshold: float) -> dict[str, Any]:
    """The summary and one row per image, scored by the protocol above."""
    truths = truths_of(split)
    counts, structure = score_maps(resized_maps(probs, truths), truths, threshold)
    scores = {**scores_from_counts(counts), **structure.per_image}
    rows = [
        {"stem": stem, **{k: round(float(v[i]), 6) for k, v in scores.items()},
         "height": int(truths[i].shape[0]), "width": int(truths[i].shape[1])}
        for i, stem in enumerate(split.stems)
    ]
    body: dict[str, Any] = {"threshold": threshold, "protocol": PROTOCOL, "protocol_text": PROTOCOL_TEXT,
            "summary": {**summarise_counts(counts), **structure.summary()}, "per_image": rows}
    sources = sorted({source_of(stem) for stem in split.stems} - {""})
    if len(sources) > 1:  # several training sources: each one's test split on its own, as papers report them
        by_source: dict[str, dict[str, float]] = {}
        for name in sources:
            picked = np.array([source_of(stem) == name for stem in split.stems])
            part = StructureScores({k: v[picked] for k, v in structure.per_image.items()}, structure.curves[picked])
            by_source[name] = {**summarise_counts(counts[picked]), **part.summary()}
        body["by_source"] = by_source
    return body


def evaluate_split(model: Any, split: SplitArrays, threshold: float,
                   batch_size: int = 16) -> tuple[dict[str, Any], np.ndarray]:
    """The test_metrics.json body (summary + per-image rows) and the probabilities."""
    probs = predict_probs(model, split.images, batch_size)
    return score_split(probs, split, threshold), probs


def image_scores(model: Any, split: SplitArrays, threshold: float, batch_size: int = 16) -> dict[str, Any]:
    """Per-image Dice and IoU by the protocol above, without the structure metrics (they cost ~50 ms an
    image): what a bootstrap over the validation images needs (report/cross_validation.py)."""
    scores = scores_from_counts(original_counts(predict_probs(model, split.images, batch_size), truths_of(split),
                                                threshold))
    return {"stems": list(split.stems), **{k: [round(float(v), 6) for v in scores[k]] for k in ("dice", "iou")}}


def write_predictions(split: SplitArrays, probs: np.ndarray, out_dir: Path, count: int, threshold: float) -> list[Path]:
    """Strips of image | truth | prediction for the first ``count`` images (at the model's input size)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for i in range(min(count, len(split))):
        truth = np.repeat(split.masks[i] * 255, 3, axis=-1).astype(np.uint8)
        pred = np.repeat((probs[i] > threshold) * 255, 3, axis=-1).astype(np.uint8)
        strip = np.concatenate([split.images[i], truth, pred], axis=1)
        path = out_dir / f"{_safe(split.stems[i])}.png"
        Image.fromarray(strip).save(path)
        written.append(path)
    return written


def write_test_outputs(out: TrialFiles, body: dict[str, Any], test: SplitArrays, probs: np.ndarray,
                       threshold: float) -> None:
    """The test metrics and the strips of the first ``len(probs)`` test images (kept free of TensorFlow:
    the search's driver writes these for every trial)."""
    write_json(out.test_metrics, body)
    write_predictions(test, probs, out.predictions, len(probs), threshold)


def write_json(path: Path, body: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body, indent=1))
    tmp.replace(path)


def _safe(stem: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)[:120]
