"""How the chosen models do on data they were not picked on: which models are scored, their rows, the
paired statistics and the body of generalisation.json (docs/generalisation.md). Ray-free: the Ray tasks
that load the checkpoints and predict are in polyp_ray/tuning/generalise.py.

The winner, each family's best trial and the top-k ensemble (mean probability of the k best trials by
validation), each with and without flip TTA where the job asks for it, are scored on the test split and
on every external test set by the original-resolution protocol. Each row gets a bootstrap CI per set;
the ensemble and TTA rows get the paired difference from the winner on the same images (bootstrap CI
and Wilcoxon p).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from polyp_ray.config import JobConfig, TrialConfig
from polyp_ray.data.dataset import SplitArrays
from polyp_ray.data.sources import source_of
from polyp_ray.evaluation import PROTOCOL
from polyp_ray.metrics import FAILURE_DICE
from polyp_ray.models.registry import family_name
from polyp_ray.set_scores import SetScores, score_members
from polyp_ray.stats import bootstrap_ci, paired_wilcoxon

TEST = "test"
Probs = dict[str, dict[str, dict[bool, np.ndarray]]]  # trial id -> set -> {tta: probabilities}


@dataclass
class Row:
    """One scored model: a single trial, or an ensemble, with or without flip TTA."""

    label: str
    kind: str  # "winner" | "family" | "ensemble"
    trial_ids: list[str]
    tta: bool
    threshold: float
    family: str = ""
    dice: dict[str, np.ndarray] = field(default_factory=dict)  # set -> per-image Dice
    iou: dict[str, np.ndarray] = field(default_factory=dict)
    scores: dict[str, SetScores] = field(default_factory=dict)  # set -> every per-image score


@dataclass(frozen=True)
class Chosen:
    """The models a search's generalisation scores, by trial id, best validation first."""

    winner: str
    members: list[str]  # the ensemble's (empty: no ensemble)
    families: dict[str, str]  # family name -> its best trial

    @property
    def needed(self) -> list[str]:
        """Every trial whose predictions the rows need, each once."""
        return list(dict.fromkeys([self.winner, *self.members, *self.families.values()]))


def scored_ids(table: pd.DataFrame) -> list[str]:
    """Trial ids whose best checkpoint was scored on test, best validation first (the table's order)."""
    ok = table["test_dice"].notna() if "test_dice" in table else pd.Series(False, index=table.index)
    if "test_error" in table:
        ok &= table["test_error"].isna()
    return [str(t) for t in table.loc[ok, "trial_id"]]


def source_tests(test: SplitArrays) -> dict[str, SplitArrays]:
    """The test split of each source of a union (data/sources.py), named "<source> test", scored and
    reported apart as the literature reports Kvasir and ClinicDB; none for a single source."""
    rows: dict[str, list[int]] = {}
    for i, stem in enumerate(test.stems):
        if name := source_of(stem):
            rows.setdefault(name, []).append(i)
    if len(rows) < 2:
        return {}
    truths = test.truths or []
    return {f"{name} test": SplitArrays(test.images[picked], test.masks[picked], [test.stems[i] for i in picked],
                                        [truths[i] for i in picked] if truths else None)
            for name, picked in rows.items()}


def choose(ranked: list[str], configs: dict[str, TrialConfig], ensemble_k: int) -> Chosen:
    """The winner (``ranked[0]``), the top ``ensemble_k`` as the ensemble and each family's first."""
    members = ranked[:ensemble_k] if ensemble_k > 1 and len(ranked) > 1 else []
    families: dict[str, str] = {}
    for trial_id in ranked:  # in validation order: the first of each family is its best
        families.setdefault(family_name(configs[trial_id].model, configs[trial_id].encoder), trial_id)
    return Chosen(ranked[0], members, families)


def build_rows(chosen: Chosen, configs: dict[str, TrialConfig], probs: Probs, tta: bool) -> list[Row]:
    """The rows whose models could all be predicted: the winner first (the rows it heads are paired with)."""
    winner = chosen.winner
    if winner not in probs:
        return []
    threshold = configs[winner].threshold
    best_family = next(f for f, t in chosen.families.items() if t == winner)
    rows = [Row("winner", "winner", [winner], False, threshold, best_family)]
    members = [t for t in chosen.members if t in probs]
    if len(members) > 1:
        rows.append(Row(f"top-{len(members)} ensemble", "ensemble", members, False, threshold))
    if tta:
        rows += [Row(f"{row.label} + flip TTA", row.kind, row.trial_ids, True, threshold, row.family)
                 for row in list(rows)]
    rows += [Row(f"best {name}", "family", [t], False, configs[t].threshold, name)
             for name, t in chosen.families.items() if t in probs]
    return rows


def score_row(row: Row, probs: Probs, truths: dict[str, list[np.ndarray] | None]) -> None:
    """Per-image scores of ``row`` on every set: its members' mean probability, thresholded for Dice and
    IoU, as it is for the structure metrics."""
    for name, truth in truths.items():
        per_member = [probs[t][name][row.tta] for t in row.trial_ids]
        row.scores[name] = score_members(per_member, truth or [], row.threshold)
        row.dice[name], row.iou[name] = row.scores[name].per_image["dice"], row.scores[name].per_image["iou"]


def generalisation_body(rows: list[Row], sets: dict[str, dict[str, Any]], job: JobConfig) -> dict[str, Any]:
    """generalisation.json: ``sets`` maps each set to what the report says of it (``n_images``, and an
    external set's own summary)."""
    winner = rows[0] if rows else None
    out_rows = []
    for row in rows:
        scored = {}
        for name, dice in row.dice.items():
            entry: dict[str, Any] = row.scores[name].entry()
            if winner is not None and row is not winner and row.kind != "family":
                entry["vs_winner"] = paired(dice, winner.dice[name])
            scored[name] = entry
        out_rows.append({"label": row.label, "kind": row.kind, "family": row.family, "trial_ids": row.trial_ids,
                         "tta": row.tta, "threshold": row.threshold, "sets": scored,
                         "per_image_dice": {name: [round(float(v), 6) for v in d] for name, d in row.dice.items()}})
    return {"protocol": PROTOCOL, "metric": job.metric, "ensemble_k": job.ensemble_k, "tta": job.tta,
            "sets": sets, "rows": out_rows}


def paired(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """``a`` minus the winner's ``b`` on the same images: the mean, its bootstrap CI and Wilcoxon's p."""
    difference = bootstrap_ci(np.asarray(a) - np.asarray(b))
    test = paired_wilcoxon({str(i): float(v) for i, v in enumerate(a)}, {str(i): float(v) for i, v in enumerate(b)})
    return {"mean_difference": difference.mean, "low": difference.low, "high": difference.high,
            "p_value": test.p_value, "n": difference.n}


def console_lines(body: dict[str, Any]) -> list[str]:
    names = list(body["sets"])
    lines = ["generalisation (per-image Dice at original resolution, 95% bootstrap CI; median; share of images "
             f"below Dice {FAILURE_DICE}; S_alpha; MAE):"]
    for row in body["rows"]:
        cells = [f"{name} {s['dice']:.4f} [{s['dice_low']:.4f}, {s['dice_high']:.4f}] median {s['median']:.3f} "
                 f"fail {s['failures']:.0%} S {s.get('s_alpha', float('nan')):.3f} MAE {s.get('mae', float('nan')):.3f}"
                 for name in names if (s := row["sets"].get(name))]
        lines.append(f"  {row['label']:<32} " + "; ".join(cells))
    return lines
