"""The polyp literature's structure metrics on probability maps, computed by ``pysodmetrics``.

Since PraNet (MICCAI 2020) papers report, beside mDice and mIoU, the weighted F-measure F^w_beta, the
S-measure S_alpha, the E-measure E_phi (mean over thresholds, and at the best threshold) and MAE. Each
is computed per image at the image's ORIGINAL resolution on the model's probability map (resized
there, as for Dice), against the original mask, and averaged over images. max E_phi is the maximum
over thresholds of the set's mean E_phi curve, as the literature's evaluation toolbox reports it (not
the mean of each image's best threshold, which would pick a threshold per image).

One difference from PraNet's published scripts, on purpose: they min-max stretch every map before
scoring, which turns an empty prediction's faint noise into a full-contrast map; we score the
probabilities as the model gives them (docs/generalisation.md).

They cost ~50 ms an image at Kvasir-SEG's size on one core (F^w_beta's distance transform most of it),
against microseconds for Dice from pixel counts: a search scores them on test and external sets, and
on validation every epoch only when the job ranks trials by one of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

CURVE = 256  # E_phi thresholds


@dataclass
class StructureScores:
    """Per-image values (name -> [N]) and each image's E_phi curve ([N, 256]) of one set."""

    per_image: dict[str, np.ndarray] = field(default_factory=dict)
    curves: np.ndarray = field(default_factory=lambda: np.zeros((0, CURVE)))

    def summary(self) -> dict[str, float]:
        """The set's figures as the literature reports them (means over images; max E_phi from the curve)."""
        if not len(self.curves):
            return {}
        out = {name: float(np.mean(values)) for name, values in self.per_image.items() if name != "max_e_phi"}
        out["max_e_phi"] = float(np.max(self.curves.mean(axis=0)))
        return out


def image_structure(prob: np.ndarray, truth: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
    """S_alpha, F^w_beta, MAE, mean and max E_phi of one [H, W] probability map against its boolean
    truth of the same shape, and the image's E_phi curve over the 256 thresholds."""
    import py_sod_metrics as sod  # OpenCV and scikit-image come with it: loaded when first scored

    pred = np.clip(np.asarray(prob, dtype=np.float64).reshape(truth.shape[:2]), 0.0, 1.0)
    gt = np.asarray(truth).reshape(truth.shape[:2]).astype(bool)
    s_measure, e_measure, weighted_f, mae = sod.Smeasure(), sod.Emeasure(), sod.WeightedFmeasure(), sod.MAE()
    for metric in (s_measure, e_measure, weighted_f, mae):
        metric.step(pred, gt, normalize=False)
    curve = np.asarray(e_measure.changeable_ems[0], dtype=np.float64)
    values = {"wf_beta": float(weighted_f.weighted_fms[0]), "s_alpha": float(s_measure.sms[0]),
              "mean_e_phi": float(curve.mean()), "max_e_phi": float(curve.max()), "mae": float(mae.maes[0])}
    return values, curve


def structure_scores(maps: Iterable[np.ndarray], truths: Iterable[np.ndarray]) -> StructureScores:
    """Every image of a set: ``maps`` and ``truths`` pair up at each image's original size."""
    rows, curves = [], []
    for prob, truth in zip(maps, truths, strict=True):
        values, curve = image_structure(prob, truth)
        rows.append(values)
        curves.append(curve)
    if not rows:
        return StructureScores()
    return StructureScores({name: np.array([r[name] for r in rows]) for name in rows[0]}, np.stack(curves))
