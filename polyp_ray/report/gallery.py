"""The best model's per-image gallery: the worst test images first, then a few of the best, and its
worst images on each external test set.

A search renders it (polyp_ray/gallery.py) and the report reads it. For an experiment without one (an
older one, or a search whose winner scoring failed), only the chosen images are decoded (with the
search's own ``decode_all``, so the preprocessing is the one the model was evaluated with) and predicted
by ``best/model.keras``: seconds, even on Kvasir. Where the dataset is not on this machine either, the
prediction strips the search wrote are shown instead. The external sets' strips exist only as the
search rendered them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from polyp_ray.errors import PolypRayError
from polyp_ray.experiment import read_trial_config
from polyp_ray.gallery import BEST, WORST, Case, case, choose, read_external_galleries, read_gallery, render
from polyp_ray.report.experiment import Experiment


@dataclass
class Gallery:
    trial_id: str
    cases: list[Case] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    external: list[tuple[str, list[Case]]] = field(default_factory=list)  # (set name, its worst cases)


def build_gallery(exp: Experiment, worst: int = WORST, best: int = BEST) -> Gallery:
    trial_id = exp.best_trial_id or ""
    gallery = Gallery(trial_id, external=read_external_galleries(exp.layout.external_galleries(), trial_id))
    saved = read_gallery(exp.layout.gallery, trial_id) if (worst, best) == (WORST, BEST) else None
    if saved:
        gallery.cases = saved
        return gallery
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
    return render(chosen, images, masks, _predict(exp.layout.best_model, images), config.threshold)


def _predict(path: Path, images: np.ndarray) -> np.ndarray:
    from polyp_ray.evaluation import predict_probs
    from polyp_ray.models.saving import load_model
    from polyp_ray.tf_quiet import quiet_stderr

    if not path.is_file():
        raise PolypRayError(f"{path}: file not found")
    with quiet_stderr():  # TensorFlow starts here, for the report: keep its console clean
        model = load_model(path)
        return predict_probs(model, images)


def _saved_strips(exp: Experiment, trial_id: str) -> list[Case]:
    """The image | truth | prediction PNGs evaluation wrote: only the first few test images have one."""
    from polyp_ray.evaluation import _safe  # the file-name rule evaluation used for these strips

    folder = exp.layout.trial(trial_id).predictions
    cases = []
    for row in exp.tests.get(trial_id, {}).get("per_image", []):
        path = folder / f"{_safe(str(row['stem']))}.png"
        if path.is_file():
            cases.append(case("shown", row, path.read_bytes()))
    return sorted(cases, key=lambda c: c.dice)
