"""The job's ``cross_validation``: the body of cross_validation.json from the fold models' scores, the
pick by fold mean, and the sentences the console and the report say of it. Ray-free: the fold models are
trained by polyp_ray/tuning/cross_validate.py.

A small validation split ranks trials noisily: one lucky split can crown a configuration that is no
better than the next. Retraining the top-k configurations on K grouped folds of the train+val pool
scores each on every pool image once, so the fold mean ranks them on K times the images. Each fold
model trains for the job's full epochs and is scored as it ends: the held-out part picks no epoch, so
it stays an honest estimate. The fold ensemble (the K fold models' mean probability) is scored on the
untouched test split.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from polyp_ray.data.dataset import SplitArrays
from polyp_ray.ensemble import ensemble_counts
from polyp_ray.evaluation import PROTOCOL, truths_of
from polyp_ray.metrics import scores_from_counts
from polyp_ray.stats import bootstrap_ci


def dice_on_test(per_member: Sequence[np.ndarray], test: SplitArrays, threshold: float) -> np.ndarray:
    """Per-image test Dice of the members' mean probability at each image's original size."""
    return scores_from_counts(ensemble_counts(per_member, truths_of(test), threshold))["dice"]


def config_entry(trial_id: str, validation: float, fold_scores: Sequence[float],
                 fold_test_probs: Sequence[np.ndarray], test: SplitArrays, threshold: float) -> dict[str, Any]:
    """One configuration's line: its fold scores (the job's metric on each held-out fold), their mean and
    spread, each fold model's test Dice and the fold ensemble's, with its bootstrap CI over test images."""
    scores = [float(s) for s in fold_scores]
    ensemble = bootstrap_ci(dice_on_test(fold_test_probs, test, threshold))
    return {"trial_id": trial_id, "validation": float(validation), "fold_scores": scores,
            "mean": float(np.mean(scores)), "std": float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0,
            "fold_test_dice": [float(np.mean(dice_on_test([p], test, threshold))) for p in fold_test_probs],
            "ensemble_test": {"dice": ensemble.mean, "dice_low": ensemble.low, "dice_high": ensemble.high,
                              "n": ensemble.n}}


def failed_entry(trial_id: str, validation: float, error: str) -> dict[str, Any]:
    return {"trial_id": trial_id, "validation": float(validation), "error": error}


def kept_entries(earlier: Sequence[dict[str, Any] | None], folds: list[dict[str, list[str]]],
                 top: Sequence[tuple[str, float]]) -> dict[str, dict[str, Any]]:
    """The configurations an earlier run of this cross-validation finished (``earlier``: its bodies, final
    or in progress, None where absent), by trial id: only on the same held-out folds, for a trial of
    ``top`` with the same validation score, and not failed (a failure is tried again)."""
    wanted = dict(top)
    held_out = [f["val"] for f in folds]
    kept: dict[str, dict[str, Any]] = {}
    for body in earlier:
        if not isinstance(body, dict) or body.get("protocol") != PROTOCOL or body.get("held_out") != held_out:
            continue
        for entry in body.get("configs", []):
            trial_id = str(entry.get("trial_id"))
            if trial_id in wanted and "mean" in entry and entry.get("validation") == wanted[trial_id]:
                kept.setdefault(trial_id, entry)
    return kept


def pick(entries: Sequence[dict[str, Any]], maximise: bool) -> str | None:
    """The trial whose configuration has the best fold mean (the first of equals: the better by
    validation, as ``entries`` are in validation order); None when no configuration has one."""
    scored = [e for e in entries if "mean" in e and not math.isnan(e["mean"])]
    if not scored:
        return None
    best = max(scored, key=lambda e: e["mean"]) if maximise else min(scored, key=lambda e: e["mean"])
    return str(best["trial_id"])


def cross_validation_body(entries: list[dict[str, Any]], folds: list[dict[str, list[str]]], metric: str,
                          mode: str, seed: int) -> dict[str, Any]:
    """cross_validation.json: ``entries`` best validation first; ``folds``: each fold's split."""
    validation_pick = str(entries[0]["trial_id"]) if entries else None
    winner = pick(entries, mode == "max")
    return {"protocol": PROTOCOL, "metric": metric, "mode": mode, "folds": len(folds), "top_k": len(entries),
            "split_seed": seed, "fold_sizes": [{"train": len(f["train"]), "held_out": len(f["val"])} for f in folds],
            "held_out": [f["val"] for f in folds], "configs": entries, "validation_pick": validation_pick,
            "winner": winner, "changed": winner is not None and winner != validation_pick}


def pick_sentence(body: dict[str, Any]) -> str:
    """The one sentence on the pick: by fold mean, and whether it differs from validation's."""
    winner, before = body.get("winner"), body.get("validation_pick")
    if winner is None:
        return f"No configuration was scored on every fold: validation's pick ({before}) stands."
    return (f"The winner by fold mean is {winner} (validation's pick was {before}: "
            f"{'changed' if body.get('changed') else 'unchanged'}).")


def console_lines(body: dict[str, Any]) -> list[str]:
    lines = [f"cross-validation ({body['folds']} grouped folds of train+val; {body['metric']} on each held-out "
             "fold after the full epochs; fold ensemble's per-image test Dice with its 95% CI):"]
    for entry in body["configs"]:
        if "error" in entry:
            lines.append(f"  {entry['trial_id']:<24} failed: {entry['error']}")
            continue
        test = entry["ensemble_test"]
        lines.append(f"  {entry['trial_id']:<24} validation {entry['validation']:.4f}  folds "
                     f"{' '.join(f'{s:.4f}' for s in entry['fold_scores'])}  mean {entry['mean']:.4f} "
                     f"± {entry['std']:.4f}  ensemble test {test['dice']:.4f} "
                     f"[{test['dice_low']:.4f}, {test['dice_high']:.4f}]")
    return [*lines, pick_sentence(body)]
