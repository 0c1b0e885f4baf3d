"""The model-comparison rows (one per family, one per trial) and the "is the ranking real?" test.

A family is represented by its best trial *by the search's validation metric*: picking it by test
score would report the test split's noise as if it were a better model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from polyp_ray.metrics import STRUCTURE, failure_rates
from polyp_ray.report.experiment import Experiment
from polyp_ray.stats import Interval, PairedTest, bootstrap_ci, paired_wilcoxon


@dataclass(frozen=True)
class Row:
    kind: str  # "family" | "trial"
    label: str
    family: str  # the decoder on its encoder (models.registry.family_name)
    trial_id: str
    n_trials: int
    val_dice: float
    val_iou: float
    val_miou: float
    test_dice: Interval
    test_iou: Interval
    test_miou: float
    n_params: float
    image_size: float
    batch_size: float
    epochs_run: float
    stopped_early: bool
    status: str
    wall_s: float
    cpu_hours: float
    gpu_hours: float
    test_error: str = ""  # why this trial's checkpoint could not be scored on the test split
    test_rates: dict[str, float] = field(default_factory=dict)  # median, failures, empty_predictions
    test_structure: dict[str, float] = field(default_factory=dict)  # the literature's metrics on test


@dataclass(frozen=True)
class Ranking:
    """The best two families and the paired test between their best trials (None: fewer than two)."""

    families: list[str]
    best_trials: dict[str, str]
    test: PairedTest | None


def family_best(exp: Experiment) -> dict[str, str]:
    """Each family's best trial id, best family first (trials are already sorted by the metric)."""
    best: dict[str, str] = {}
    for _, row in exp.scored_trials().iterrows():
        best.setdefault(str(row["family"]), str(row["trial_id"]))
    return best


def trial_rows(exp: Experiment) -> list[Row]:
    return [_row(exp, row, "trial", str(row["trial_id"]), 1, row) for _, row in exp.trials.iterrows()]


def family_rows(exp: Experiment) -> list[Row]:
    rows = []
    for family, trial_id in family_best(exp).items():
        members = exp.trials[exp.trials["family"] == family]
        rows.append(_row(exp, exp.trial_row(trial_id), "family", family, len(members), _costs(members)))
    return rows


def ranking(exp: Experiment) -> Ranking:
    best = family_best(exp)
    families = list(best)[:2]
    if len(families) < 2:
        return Ranking(families, best, None)
    a, b = (exp.per_image(best[f]) for f in families)
    return Ranking(families, best, paired_wilcoxon(a, b))


def _costs(members: pd.DataFrame) -> dict[str, float]:
    return {key: float(pd.to_numeric(members[key], errors="coerce").sum()) if key in members else math.nan
            for key in ("wall_s", "cpu_hours", "gpu_hours")}


def _row(exp: Experiment, row: pd.Series, kind: str, label: str, n_trials: int, costs: Any) -> Row:
    trial_id = str(row["trial_id"])
    test = exp.tests.get(trial_id, {})
    return Row(
        kind=kind, label=label, family=str(row.get("family", "")), trial_id=trial_id, n_trials=n_trials,
        val_dice=_num(row, "best_val_dice"), val_iou=_num(row, "best_val_iou"),
        val_miou=_num(row, "best_val_miou_2class"),
        test_dice=bootstrap_ci(list(exp.per_image(trial_id, "dice").values())),
        test_iou=bootstrap_ci(list(exp.per_image(trial_id, "iou").values())),
        test_miou=_num(test.get("summary", {}), "miou_2class", _num(row, "test_miou_2class")),
        n_params=_num(row, "n_params", _num(test, "n_params")),
        image_size=_num(row, "image_size", _num(test, "image_size")),
        batch_size=_num(row, "batch_size"), epochs_run=_num(row, "epochs_run"),
        stopped_early=str(row.get("stopped_early", "")).lower() == "true", status=str(row.get("status", "")),
        wall_s=_num(costs, "wall_s"), cpu_hours=_num(costs, "cpu_hours"), gpu_hours=_num(costs, "gpu_hours"),
        test_error=exp.test_error(trial_id),
        test_rates=_rates(test.get("per_image", [])),
        test_structure={name: _num(test.get("summary", {}), name, _num(row, f"test_{name}")) for name in STRUCTURE},
    )


def _rates(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Median, failure share and empty-prediction share from test_metrics.json's per-image rows."""
    rows = [r for r in rows if "dice" in r]
    if not rows:
        return {}
    columns = (np.array([_num(r, key, 0.0) for r in rows]) for key in ("dice", "pred_fraction", "truth_fraction"))
    return failure_rates(*columns)


def _num(source: Any, key: str, default: float = math.nan) -> float:
    try:
        value = float(source.get(key, default))
    except (TypeError, ValueError, AttributeError):
        return default
    return default if math.isnan(value) else value
