"""The best model's per-image gallery: the worst test images first, then a few of the best.

Only the chosen images are decoded (with the search's own ``decode_all``, so the preprocessing is the
one the model was evaluated with) and predicted by ``best/model.keras``: seconds, even on Kvasir.
Where the dataset is not on this machine, the prediction strips the search wrote are shown instead.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from polyp_ray.errors import PolypRayError
from polyp_ray.experiment import read_trial_config
from polyp_ray.report.experiment import Experiment

WORST, BEST = 12, 4
MIN_PANEL = 128  # pixels: 64-pixel search images are upscaled so a polyp's border is visible
TRUTH, HIT, FALSE_POSITIVE, MISSED = (0, 200, 0), (0, 200, 0), (230, 30, 30), (40, 90, 255)


@dataclass(frozen=True)
class Case:
    stem: str
    group: str  # "worst" | "best" | "shown" (the saved strips, when the model cannot be run)
    dice: float
    iou: float
    truth_fraction: float
    png: bytes  # image | truth | prediction


@dataclass
class Gallery:
    trial_id: str
    cases: list[Case] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def build_gallery(exp: Experiment, worst: int = WORST, best: int = BEST) -> Gallery:
    trial_id = exp.best_trial_id or ""
    gallery = Gallery(trial_id)
    chosen = choose(exp.tests.get(trial_id, {}).get("per_image", []), worst, best)
    if not chosen:
        gallery.notes.append("the best trial has no per-image test scores")
        return gallery
    try:
        gallery.cases = _rendered(exp, chosen, gallery.notes)
    except Exception as err:  # noqa: BLE001 - Keras and TF raise many types; the report must still be written
        gallery.notes.append(f"could not predict with {exp.layout.best_model} ({err}); "
                             "showing the strips the search wrote")
        gallery.cases = _saved_strips(exp, trial_id)
    return gallery


def choose(rows: list[dict[str, Any]], worst: int, best: int) -> list[tuple[str, dict[str, Any]]]:
    """The ``worst`` lowest-Dice rows, then the ``best`` highest not already shown (ties by stem)."""
    ordered = sorted(rows, key=lambda r: (float(r.get("dice", 0.0)), str(r.get("stem", ""))))
    low = ordered[:worst]
    high = ordered[len(low):][-best:][::-1] if best else []
    return [("worst", r) for r in low] + [("best", r) for r in high]


def _rendered(exp: Experiment, chosen: list[tuple[str, dict[str, Any]]], notes: list[str]) -> list[Case]:
    from polyp_ray.data.dataset import decode_all, describe_dataset

    config = read_trial_config(exp.layout.best_config)
    info, pairs = describe_dataset(config.data)
    if exp.dataset.get("sha256") and info.sha256 != exp.dataset["sha256"]:
        notes.append(f"the dataset at {info.root} has changed since the search (its hash differs)")
    by_stem = {p.stem: p for p in pairs}
    missing = [row["stem"] for _, row in chosen if row["stem"] not in by_stem]
    if missing:
        raise PolypRayError(f"{len(missing)} test image(s) not in {info.root}, e.g. {missing[0]!r}")
    images, masks = decode_all([by_stem[row["stem"]] for _, row in chosen], config.image_size,
                               config.data.mask_threshold)
    probs = _predict(exp.layout.best_model, images)
    return [_case(group, row, strip(images[i], masks[i, ..., 0] > 0, probs[i, ..., 0] > config.threshold))
            for i, (group, row) in enumerate(chosen)]


def _predict(path: Path, images: np.ndarray) -> np.ndarray:
    from polyp_ray.evaluation import predict_probs
    from polyp_ray.models.saving import load_model
    from polyp_ray.tf_quiet import quiet_stderr

    if not path.is_file():
        raise PolypRayError(f"{path}: file not found")
    with quiet_stderr():  # the search's driver starts TensorFlow here, for the report: keep its console clean
        model = load_model(path)
        return predict_probs(model, images)


def strip(image: np.ndarray, truth: np.ndarray, pred: np.ndarray) -> bytes:
    """PNG of image | truth in green | prediction (green hit, red false positive, blue missed)."""
    truth_view = _tint(image, [(TRUTH, truth)])
    pred_view = _tint(image, [(HIT, truth & pred), (FALSE_POSITIVE, pred & ~truth), (MISSED, truth & ~pred)])
    panels = [_upscaled(p) for p in (image, truth_view, pred_view)]
    gap = np.full((panels[0].shape[0], 4, 3), 255, dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)).save(buffer, "PNG")
    return buffer.getvalue()


def _tint(image: np.ndarray, layers: list[tuple[tuple[int, int, int], np.ndarray]]) -> np.ndarray:
    out = image.astype(np.float32)
    for colour, where in layers:
        out[where] = 0.45 * out[where] + 0.55 * np.array(colour, dtype=np.float32)
    return out.astype(np.uint8)


def _upscaled(panel: np.ndarray) -> np.ndarray:
    side = panel.shape[0]
    if side >= MIN_PANEL:
        return panel
    factor = -(-MIN_PANEL // side)  # whole factor: every source pixel stays a crisp square
    return np.repeat(np.repeat(panel, factor, axis=0), factor, axis=1)


def _case(group: str, row: dict[str, Any], png: bytes) -> Case:
    return Case(str(row["stem"]), group, float(row.get("dice", np.nan)), float(row.get("iou", np.nan)),
                float(row.get("truth_fraction", np.nan)), png)


def _saved_strips(exp: Experiment, trial_id: str) -> list[Case]:
    """The image | truth | prediction PNGs evaluation wrote: only the first few test images have one."""
    from polyp_ray.evaluation import _safe  # the file-name rule evaluation used for these strips

    folder = exp.layout.trial(trial_id).predictions
    cases = []
    for row in exp.tests.get(trial_id, {}).get("per_image", []):
        path = folder / f"{_safe(str(row['stem']))}.png"
        if path.is_file():
            cases.append(_case("shown", row, path.read_bytes()))
    return sorted(cases, key=lambda c: c.dice)
