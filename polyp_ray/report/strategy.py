"""What the search ran and what it left out: its scheduler and sampler (polyp_ray/strategy.json), the
trials the time budget stopped before their first epoch (listed apart: they are not results), and under
PBT each trial's lineage (which trial it was cloned from, at which epoch)."""

from __future__ import annotations

import pandas as pd

from polyp_ray.report.markup import esc
from polyp_ray.strategy_config import NOT_STARTED, SEEDED, STARTUP


def split_not_started(trials: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """trials.csv without the never-trained trials, and their ids."""
    if "status" not in trials:
        return trials, []
    apart = trials["status"] == NOT_STARTED
    return trials[~apart].reset_index(drop=True), [str(t) for t in trials.loc[apart, "trial_id"]]


def summary(strategy: dict, not_started: list[str], trials: pd.DataFrame, best: str | None = None) -> str:
    """The report's strategy paragraph (with who proposed the winner), the not-started list and the PBT
    lineage table."""
    parts = []
    if strategy:
        rest = ", ".join(f"{esc(k)} {esc(v)}" for k, v in strategy.items() if k not in ("scheduler", "sampler"))
        parts.append(f"<p>Strategy: scheduler <b>{esc(strategy.get('scheduler', '?'))}</b>, sampler "
                     f"<b>{esc(strategy.get('sampler', '?'))}</b>{f' ({rest})' if rest else ''}."
                     f"{_winner_origin(trials, best)}</p>")
    if not_started:
        parts.append(f"<p>{len(not_started)} trial(s) {NOT_STARTED}: the budget ended before their first epoch, "
                     f"so they are no results and appear nowhere below: {esc(', '.join(not_started))}.</p>")
    if "lineage" in trials:
        cloned = trials.dropna(subset=["lineage"])
        rows = "".join(f"<tr><td><code>{esc(t)}</code></td><td>{esc(_lineage(str(line)))}</td></tr>"
                       for t, line in zip(cloned["trial_id"], cloned["lineage"], strict=True) if str(line).strip())
        if rows:
            parts.append("<h3>PBT lineage</h3><table><tr><th>trial</th><th>cloned from (trial at epoch), "
                         f"oldest first</th></tr>{rows}</table>")
    return "".join(parts)


def _winner_origin(trials: pd.DataFrame, best: str | None) -> str:
    """Who proposed the winner (tuning/proposals.py's labels in trials.csv), and what that means."""
    if best is None or "proposed_by" not in trials:
        return ""
    labels = trials.loc[trials["trial_id"].astype(str) == best, "proposed_by"].dropna()
    label = str(labels.iloc[0]) if len(labels) else ""
    if label == STARTUP:
        draws = int((trials["proposed_by"] == STARTUP).sum())
        return (f" The winner was one of the sampler's {draws} random start-up draws, not a configuration it "
                "proposed: the search ended before it learnt anything that beat them (a longer budget, or "
                "shorter trials, lets it).")
    if label == SEEDED:
        return " The winner was a seeded point (points_to_evaluate), not a configuration the sampler proposed."
    return f" The winner was proposed by the sampler ({esc(label)})." if label else ""


def _lineage(line: str) -> str:
    return ", then ".join(f"{donor} at epoch {epoch}" for donor, _, epoch in
                          (step.partition("@") for step in line.split(";") if step))
