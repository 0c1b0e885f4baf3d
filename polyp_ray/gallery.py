"""The winner's gallery: its worst test images first, then a few of its best, each an image | truth |
prediction strip at the model's input size; and for each external test set, its worst images there (where
a model fails out of domain is what a reader of a generalisation table needs to see).

The search renders it (tuning/generalise.py) from the test probabilities it already holds for the winner,
and the report reads it: the report then needs neither TensorFlow (about 6 s to import, in the search's
own driver) nor the dataset on its machine. The files are ``ExperimentLayout.gallery``'s.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from polyp_ray.evaluation import write_json
from polyp_ray.experiment import GalleryFiles

WORST, BEST = 12, 4
WORST_EXTERNAL = 8
TEST_SET = "test"
MIN_PANEL = 128  # pixels: 64-pixel search images are upscaled so a polyp's border is visible
TRUTH, HIT, FALSE_POSITIVE, MISSED = (0, 200, 0), (0, 200, 0), (230, 30, 30), (40, 90, 255)


@dataclass(frozen=True)
class Case:
    stem: str
    group: str  # "worst" | "best" | "shown" (the trial's first prediction strips, when nothing else is there)
    dice: float
    iou: float
    truth_fraction: float
    png: bytes  # image | truth | prediction


def choose(rows: list[dict[str, Any]], worst: int = WORST, best: int = BEST) -> list[tuple[str, dict[str, Any]]]:
    """The ``worst`` lowest-Dice rows, then the ``best`` highest not already shown (ties by stem)."""
    ordered = sorted(rows, key=lambda r: (float(r.get("dice", 0.0)), str(r.get("stem", ""))))
    low = ordered[:worst]
    high = ordered[len(low):][-best:][::-1] if best else []
    return [("worst", r) for r in low] + [("best", r) for r in high]


def render(chosen: list[tuple[str, dict[str, Any]]], images: np.ndarray, masks: np.ndarray, probs: np.ndarray,
           threshold: float) -> list[Case]:
    """The strips of ``chosen`` (group, per-image row), whose images, masks and probabilities are given
    in the same order."""
    return [case(group, row, strip(images[i], masks[i, ..., 0] > 0, probs[i, ..., 0] > threshold))
            for i, (group, row) in enumerate(chosen)]


def winner_cases(stems: list[str], per_image: dict[str, np.ndarray], images: np.ndarray, masks: np.ndarray,
                 probs: np.ndarray, threshold: float, worst: int = WORST, best: int = BEST) -> list[Case]:
    """The gallery of a model scored on a split: ``per_image`` its scores (dice, iou, truth_fraction) in
    the split's order, ``images``, ``masks`` and ``probs`` the split's at the model's input size. Scores
    rounded as test_metrics.json's, so the choice is the one the report would make from that file."""
    rows = [{"stem": stem, **{k: round(float(per_image[k][i]), 6) for k in ("dice", "iou", "truth_fraction")}}
            for i, stem in enumerate(stems)]
    chosen = choose(rows, worst, best)
    where = {stem: i for i, stem in enumerate(stems)}
    picked = [where[row["stem"]] for _, row in chosen]
    return render(chosen, images[picked], masks[picked], probs[picked], threshold)


def case(group: str, row: dict[str, Any], png: bytes) -> Case:
    return Case(str(row["stem"]), group, float(row.get("dice", np.nan)), float(row.get("iou", np.nan)),
                float(row.get("truth_fraction", np.nan)), png)


def strip(image: np.ndarray, truth: np.ndarray, pred: np.ndarray) -> bytes:
    """PNG of image | truth in green | prediction (green hit, red false positive, blue missed)."""
    truth_view = _tint(image, [(TRUTH, truth)])
    pred_view = _tint(image, [(HIT, truth & pred), (FALSE_POSITIVE, pred & ~truth), (MISSED, truth & ~pred)])
    panels = [_upscaled(p) for p in (image, truth_view, pred_view)]
    gap = np.full((panels[0].shape[0], 4, 3), 255, dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)).save(buffer, "PNG")
    return buffer.getvalue()


def write_gallery(files: GalleryFiles, trial_id: str, cases: list[Case], shown_set: str = TEST_SET) -> None:
    """The strips and their index (``shown_set``: the test split or an external set's name); the index
    goes last, so a gallery cut short reads as none."""
    files.index.unlink(missing_ok=True)
    files.folder.mkdir(parents=True, exist_ok=True)
    listed = []
    for number, item in enumerate(cases):
        files.strip(number).write_bytes(item.png)
        listed.append({**{k: v for k, v in asdict(item).items() if k != "png"}, "file": files.strip(number).name})
    write_json(files.index, {"trial_id": trial_id, "set": shown_set, "cases": listed})


def read_gallery(files: GalleryFiles, trial_id: str) -> list[Case] | None:
    """The gallery the search rendered for ``trial_id``; None when there is none for that trial (an older
    experiment, a search whose winner scoring failed) or it cannot be read."""
    found = _read(files, trial_id)
    return found[1] if found else None


def read_external_galleries(folders: list[GalleryFiles], trial_id: str) -> list[tuple[str, list[Case]]]:
    """(external set's name, its worst cases) of each external gallery written for ``trial_id``."""
    return [found for found in (_read(files, trial_id) for files in folders) if found]


def forget(folders: list[GalleryFiles]) -> None:
    """Make earlier galleries read as none (their index gone) before a new winner's are written."""
    for files in folders:
        files.index.unlink(missing_ok=True)


def _read(files: GalleryFiles, trial_id: str) -> tuple[str, list[Case]] | None:
    try:
        body = json.loads(files.index.read_text())
        if body.get("trial_id") != trial_id:
            return None
        return str(body.get("set", TEST_SET)), [
            Case(str(c["stem"]), str(c["group"]), float(c["dice"]), float(c["iou"]), float(c["truth_fraction"]),
                 (files.folder / Path(str(c["file"])).name).read_bytes()) for c in body["cases"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


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
