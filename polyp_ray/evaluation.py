"""Evaluate a model on one split: per-image and pooled metrics, and image | truth | prediction PNGs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras
import numpy as np
from PIL import Image

from polyp_ray.data.dataset import SplitArrays
from polyp_ray.data.pipeline import eval_images
from polyp_ray.metrics import per_image_scores, summarise


def predict_probs(model: keras.Model, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Sigmoid probabilities [N, H, W, 1] as float32 for uint8 images [N, H, W, 3]."""
    if len(images) == 0:
        return np.zeros((0, *images.shape[1:3], 1), dtype=np.float32)
    return np.asarray(model.predict(eval_images(images, batch_size), verbose=0), dtype=np.float32)


def evaluate_split(
    model: keras.Model, split: SplitArrays, threshold: float, batch_size: int = 16
) -> tuple[dict[str, Any], np.ndarray]:
    """The test_metrics.json body (summary + per-image rows) and the probabilities."""
    probs = predict_probs(model, split.images, batch_size)
    truth = split.masks.astype(np.float32)
    scores = per_image_scores(probs, truth, threshold)
    rows = [
        {"stem": stem, **{k: round(float(v[i]), 6) for k, v in scores.items()}}
        for i, stem in enumerate(split.stems)
    ]
    return {"threshold": threshold, "summary": summarise(probs, truth, threshold), "per_image": rows}, probs


def write_predictions(split: SplitArrays, probs: np.ndarray, out_dir: Path, count: int, threshold: float) -> list[Path]:
    """Strips of image | truth | prediction for the first ``count`` images."""
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


def write_json(path: Path, body: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body, indent=1))
    tmp.replace(path)


def _safe(stem: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)[:120]
