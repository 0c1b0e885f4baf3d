"""A surrogate of the recorded learning curves (bench/search_curves.jsonl, made by search_record.py): for
any point of the space and any epoch, the val Dice a trial would report and the seconds the epoch takes.

Two scikit-learn ExtraTrees regressors on the point's features and the epoch: one for val Dice, one for
log seconds per epoch (the first epoch, which builds and compiles the model, has its own feature). The
noise added to a replayed Dice is drawn from the Dice model's own out-of-fold residuals, so a replayed
search meets the measurement noise the real one did. ``held_out`` reports the error on configurations the
model never saw (5-fold, grouped by configuration).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

CURVES = Path(__file__).with_name("search_curves.jsonl")
MODELS = ("unet", "encoder_decoder")
LOSSES = ("bce_dice", "dice")


def features(point: dict[str, Any], epoch: int) -> list[float]:
    return [float(MODELS.index(point["model"])), float(point["base_width"]), float(point["image_size"]),
            float(point["batch_size"]), float(point["aug_strength"]), math.log10(float(point["learning_rate"])),
            float(LOSSES.index(point.get("loss", "bce_dice"))), float(epoch), float(epoch == 1)]


def read_curves(path: Path = CURVES) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return sorted(rows, key=lambda r: r["index"])


def _tables(rows: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """X, Dice, log seconds, and each row's configuration index; a diverged run scores 0 after it stopped."""
    xs, dice, secs, groups = [], [], [], []
    for row in rows:
        curve = {int(c["epoch"]): c for c in row["curve"]}
        last_s = [c["epoch_s"] for c in row["curve"]][-1:] or [1.0]
        for epoch in range(1, int(row["epochs"]) + 1):
            c = curve.get(epoch)
            xs.append(features(row, epoch))
            dice.append(float(c["val_dice"]) if c else 0.0)
            secs.append(math.log(float(c["epoch_s"]) if c else float(last_s[0])))
            groups.append(row["index"])
    return np.array(xs), np.array(dice), np.array(secs), np.array(groups)


def _forest(seed: int):
    from sklearn.ensemble import ExtraTreesRegressor

    return ExtraTreesRegressor(n_estimators=200, min_samples_leaf=2, random_state=seed, n_jobs=1)


@dataclass
class Surrogate:
    dice_model: Any
    time_model: Any
    residuals: np.ndarray
    epochs: int
    held_out: dict[str, float] = field(default_factory=dict)

    def mean_curve(self, point: dict[str, Any]) -> np.ndarray:
        """The noise-free Dice at epochs 1..epochs: the "true" score a replay is judged by."""
        x = np.array([features(point, e) for e in range(1, self.epochs + 1)])
        return np.clip(self.dice_model.predict(x), 0.0, 1.0)

    def seconds(self, point: dict[str, Any]) -> np.ndarray:
        x = np.array([features(point, e) for e in range(1, self.epochs + 1)])
        return np.exp(self.time_model.predict(x))

    def noisy_curve(self, point: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        """What a trial of ``point`` reports: the mean curve plus residuals drawn from the model's own."""
        return self.trial(point, rng)[0]

    def trial(self, point: dict[str, Any], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(noisy Dice, true Dice, seconds) of ``point``: one feature table for all three (a forest's
        predict costs milliseconds of fixed overhead, paid per replayed trial)."""
        x = np.array([features(point, e) for e in range(1, self.epochs + 1)])
        true = np.clip(self.dice_model.predict(x), 0.0, 1.0)
        noisy = np.clip(true + rng.choice(self.residuals, size=self.epochs), 0.0, 1.0)
        return noisy, true, np.exp(self.time_model.predict(x))

    def mean_curves(self, points: list[dict[str, Any]]) -> np.ndarray:
        """mean_curve of many points in one predict: (points, epochs)."""
        x = np.array([features(p, e) for p in points for e in range(1, self.epochs + 1)])
        return np.clip(self.dice_model.predict(x), 0.0, 1.0).reshape(len(points), self.epochs)


def fit(rows: list[dict[str, Any]], seed: int = 0) -> Surrogate:
    from sklearn.model_selection import GroupKFold

    x, dice, secs, groups = _tables(rows)
    out_of_fold = np.zeros_like(dice)
    secs_oof = np.zeros_like(secs)
    for train, test in GroupKFold(n_splits=5).split(x, dice, groups):
        out_of_fold[test] = _forest(seed).fit(x[train], dice[train]).predict(x[test])
        secs_oof[test] = _forest(seed).fit(x[train], secs[train]).predict(x[test])
    residuals = dice - out_of_fold
    final = x[:, 7] == x[:, 7].max()
    best_true = np.array([dice[groups == g].max() for g in np.unique(groups)])
    best_pred = np.array([out_of_fold[groups == g].max() for g in np.unique(groups)])
    from scipy.stats import spearmanr

    held_out = {"configs": float(len(np.unique(groups))), "dice_mae": float(np.abs(residuals).mean()),
                "dice_rmse": float(np.sqrt((residuals ** 2).mean())),
                "final_epoch_mae": float(np.abs(residuals[final]).mean()),
                "best_spearman": float(spearmanr(best_true, best_pred).statistic),
                "seconds_mape": float(np.abs(np.exp(secs_oof - secs) - 1).mean())}
    return Surrogate(_forest(seed).fit(x, dice), _forest(seed).fit(x, secs), residuals,
                     int(x[:, 7].max()), held_out)
