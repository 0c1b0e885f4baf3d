"""The report's headline: the winner's in-domain score, its worst external set, and how it was chosen.

A headline that gives only the in-domain mean hides what a user meets on another centre's images (a
Kvasir-trained winner at 0.29 mean Dice on a video set had half its images at 0), and one that does not
say the winner was picked by validation invites reading its test score as a fair estimate of the pick.
"""

from __future__ import annotations

import math
from typing import Any

from polyp_ray.metrics import FAILURE_DICE, job_metric
from polyp_ray.report.comparison import Row
from polyp_ray.report.experiment import Experiment
from polyp_ray.report.generalisation import set_label
from polyp_ray.report.markup import esc, fmt
from polyp_ray.report.table import ci, failures


def headline(exp: Experiment, best: Row | None, body: dict[str, Any] | None) -> str:
    if best is None:
        return ""
    parts = [f"Winner: <b>{esc(best.family)}</b> (trial {esc(best.trial_id)}), on "
             f"{esc(set_label(exp, 'test'))} Dice {ci(best.test_dice)}{failures(best.test_rates)}; "
             f"IoU {ci(best.test_iou)}, 2-class mIoU {fmt(best.test_miou)}."]
    worst = _worst_external(body)
    if worst is not None:
        name, entry = worst
        parts.append(f"On its worst external set, <b>{esc(name)}</b>: mean Dice {fmt(_num(entry.get('dice')))}, "
                     f"<b>{_share(entry.get('failures'))}</b> of its images below Dice {FAILURE_DICE} "
                     f"(median {fmt(_num(entry.get('median')))}, {_share(entry.get('empty_predictions'))} "
                     "empty predictions on images with a polyp).")
    parts.append(_choice(exp))
    return f'<p class="headline">{" ".join(p for p in parts if p)}</p>'


def _worst_external(body: dict[str, Any] | None) -> tuple[str, dict[str, Any]] | None:
    winner = next((r for r in (body or {}).get("rows", []) if r.get("kind") == "winner" and not r.get("tta")), None)
    if winner is None:
        return None
    sets = (body or {}).get("sets") or {}
    external = [(name, entry) for name, entry in (winner.get("sets") or {}).items()
                if name != "test" and not (sets.get(name) or {}).get("part_of")  # a source's own test split
                and not math.isnan(_num(entry.get("dice")))]
    return min(external, key=lambda item: _num(item[1].get("dice"))) if external else None


def _choice(exp: Experiment) -> str:
    """Chosen by validation, and by how much over the runner-up."""
    scored = exp.scored_trials()
    column = f"best_{exp.metric}"
    if scored.empty or column not in scored:
        return ""
    values = [float(v) for v in scored[column].iloc[:2]]
    text = f"Chosen by validation {esc(exp.metric)} ({fmt(values[0], 4)})"
    if len(values) < 2:
        return text + ", the only scored trial."
    try:
        _, mode = job_metric(exp.metric)
    except KeyError:
        mode = "max"
    margin = values[0] - values[1] if mode == "max" else values[1] - values[0]
    runner = esc(str(scored["trial_id"].iloc[1]))
    return f"{text}, {margin:.4f} ahead of the runner-up (trial {runner}, {fmt(values[1], 4)})."


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _share(value: Any) -> str:
    number = _num(value)
    return "–" if math.isnan(number) else f"{number:.0%}"
