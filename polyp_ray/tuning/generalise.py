"""After the search: how the chosen models do on data they were not picked on.

The winner, each family's best trial and the top-k ensemble (mean probability of the k best trials by
validation), each with and without flip TTA where the job asks for it, are scored on the test split and
on every external test set (``data.external_tests``) by the original-resolution protocol. Each row gets
a bootstrap CI per set; the ensemble and TTA rows get the paired difference from the winner on the
same images (bootstrap CI and Wilcoxon p). ``generalisation.json`` holds it all for the report, and
the ensemble's members are kept in ``ensemble/`` for ``predict --ensemble``.

Predictions run as Ray tasks with the trials' own resources (GPUs where the trials had them); a
member whose checkpoint fails is reported and left out, and the search's other results stand.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import ray

from polyp_ray.config import JobConfig
from polyp_ray.data.dataset import PreparedData, SplitArrays
from polyp_ray.data.external import ExternalSet, external_split
from polyp_ray.evaluation import PROTOCOL, write_json
from polyp_ray.metrics import FAILURE_DICE
from polyp_ray.models.registry import family_name
from polyp_ray.models.saving import checkpoint_model, export_archive, load_model
from polyp_ray.set_scores import SetScores, score_members
from polyp_ray.stats import bootstrap_ci, paired_wilcoxon
from polyp_ray.tuning.finish import one_line

GENERALISATION = "generalisation.json"
ENSEMBLE_DIR = "ensemble"
TEST = "test"


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


def generalise(table: pd.DataFrame, checkpoints: dict[str, Any], job: JobConfig,
               prepared: dict[int, PreparedData], external: dict[str, ExternalSet], ours: Path) -> dict | None:
    """Score the winner, the family bests and the ensemble on test and external sets; write the results."""
    ranked = [t for t in _scored_ids(table) if t in checkpoints]
    if not ranked:
        return None
    configs = {t: json.loads((ours / "trials" / t / "trial_config.json").read_text()) for t in ranked}
    members = ranked[: job.ensemble_k] if job.ensemble_k > 1 and len(ranked) > 1 else []
    families: dict[str, str] = {}
    for trial_id in ranked:  # in validation order: the first of each family is its best
        families.setdefault(family_name(configs[trial_id]["model"], configs[trial_id]["encoder"]), trial_id)
    needed = list(dict.fromkeys([ranked[0], *members, *families.values()]))
    sizes = sorted({int(configs[t]["image_size"]) for t in needed})
    sets = {TEST: {s: prepared[s].splits[TEST] for s in sizes}}
    sets.update({name: {s: external_split(ext, s, job.trial.data) for s in sizes} for name, ext in external.items()})
    truths = {name: by_size[sizes[0]].truths for name, by_size in sets.items()}
    set_refs = {name: {s: ray.put(split) for s, split in by_size.items()} for name, by_size in sets.items()}
    print(f"scoring the winner, {len(families)} family best(s)"
          f"{f' and the top-{len(members)} ensemble' if members else ''} on {', '.join(sets)}"
          f"{' (with flip TTA)' if job.tta else ''}", flush=True)
    probs = _predict_all(needed, checkpoints, configs, set_refs, job)
    rows = _rows(ranked[0], members, families, configs, probs, job.tta)
    for row in rows:
        _score(row, probs, truths)
    body = _body(rows, {name: len(t or []) for name, t in truths.items()}, external, job)
    write_json(ours / GENERALISATION, body)
    _keep_members([t for t in members if t in probs], checkpoints, configs, ours, job.tta)
    _print(body)
    return body


def _scored_ids(table: pd.DataFrame) -> list[str]:
    """Trial ids whose best checkpoint was scored on test, best validation first (the table's order)."""
    ok = table["test_dice"].notna() if "test_dice" in table else pd.Series(False, index=table.index)
    if "test_error" in table:
        ok &= table["test_error"].isna()
    return [str(t) for t in table.loc[ok, "trial_id"]]


def _predict_all(needed: list[str], checkpoints: dict[str, Any], configs: dict[str, dict],
                 set_refs: dict[str, dict[int, Any]], job: JobConfig) -> dict[str, dict[str, dict[bool, np.ndarray]]]:
    """trial id -> set -> {tta: probabilities at the trial's own size}; failed trials are left out.

    The models are shared out over at most ``max_concurrent`` tasks, each loading its models one after
    another: a task's start (a process importing TensorFlow) costs more than predicting a test split.
    """
    task = ray.remote(_predict_sets).options(num_cpus=job.resources.cpu, num_gpus=job.resources.gpu)
    chunks = [needed[i::job.max_concurrent] for i in range(min(job.max_concurrent, len(needed)))]
    pending = []
    for chunk in chunks:
        members = [(t, checkpoints[t], configs[t], {name: refs[int(configs[t]["image_size"])]
                                                    for name, refs in set_refs.items()}) for t in chunk]
        pending.append((chunk, task.remote(members, job.tta)))
    probs: dict[str, Any] = {}
    for chunk, ref in pending:
        try:
            done, failures = ray.get(ref)
        except Exception as err:  # noqa: BLE001 - one task's failure must not lose the others
            done, failures = {}, {t: one_line(err) for t in chunk}
        probs.update(done)
        for trial_id, message in failures.items():
            print(f"warning: trial {trial_id}: scoring on the test and external sets failed: {message}",
                  file=sys.stderr, flush=True)
    return probs


def _predict_sets(members: list[tuple[str, Any, dict, dict[str, Any]]], tta: bool
                  ) -> tuple[dict[str, dict[str, dict[bool, np.ndarray]]], dict[str, str]]:
    """Each member's probabilities on every set (and with flip TTA), and why any member failed."""
    from polyp_ray.ensemble import member_probs
    from polyp_ray.runtime import configure_tensorflow

    done: dict[str, dict[str, dict[bool, np.ndarray]]] = {}
    failures: dict[str, str] = {}
    for trial_id, checkpoint, config, split_refs in members:
        try:
            configure_tensorflow("float32", int(config.get("seed", 0)), int(config.get("cpu_threads", 0)))
            with checkpoint.as_directory() as folder:
                model = load_model(checkpoint_model(Path(folder)))
            batch = int(config.get("batch_size", 16))
            out: dict[str, dict[bool, np.ndarray]] = {}
            for name, ref in split_refs.items():
                split: SplitArrays = ray.get(ref)
                out[name] = {False: member_probs(model, split.images, False, batch)}
                if tta:
                    out[name][True] = member_probs(model, split.images, True, batch)
            done[trial_id] = out
        except Exception as err:  # noqa: BLE001 - reported per member by the driver
            failures[trial_id] = one_line(err)
    return done, failures


def _rows(winner: str, members: list[str], families: dict[str, str], configs: dict[str, dict],
          probs: dict[str, Any], tta: bool) -> list[Row]:
    if winner not in probs:
        return []
    threshold = float(configs[winner]["threshold"])
    best_family = next(f for f, t in families.items() if t == winner)
    rows = [Row("winner", "winner", [winner], False, threshold, best_family)]
    members = [t for t in members if t in probs]
    if len(members) > 1:
        rows.append(Row(f"top-{len(members)} ensemble", "ensemble", members, False, threshold))
    if tta:
        rows += [Row(f"{row.label} + flip TTA", row.kind, row.trial_ids, True, threshold, row.family)
                 for row in list(rows)]
    rows += [Row(f"best {name}", "family", [t], False, float(configs[t]["threshold"]), name)
             for name, t in families.items() if t in probs]
    return rows


def _score(row: Row, probs: dict[str, Any], truths: dict[str, list[np.ndarray] | None]) -> None:
    for name, truth in truths.items():
        per_member = [probs[t][name][row.tta] for t in row.trial_ids]
        row.scores[name] = score_members(per_member, truth or [], row.threshold)
        row.dice[name], row.iou[name] = row.scores[name].per_image["dice"], row.scores[name].per_image["iou"]


def _body(rows: list[Row], sizes: dict[str, int], external: dict[str, ExternalSet], job: JobConfig) -> dict:
    winner = rows[0] if rows else None
    out_rows = []
    for row in rows:
        sets = {}
        for name, dice in row.dice.items():
            entry: dict[str, Any] = row.scores[name].entry()
            if winner is not None and row is not winner and row.kind != "family":
                entry["vs_winner"] = _paired(dice, winner.dice[name])
            sets[name] = entry
        out_rows.append({"label": row.label, "kind": row.kind, "family": row.family, "trial_ids": row.trial_ids,
                         "tta": row.tta, "threshold": row.threshold, "sets": sets,
                         "per_image_dice": {name: [round(float(v), 6) for v in d] for name, d in row.dice.items()}})
    return {"protocol": PROTOCOL, "metric": job.metric, "ensemble_k": job.ensemble_k, "tta": job.tta,
            "sets": {name: {"n_images": n, **(external[name].summary() if name in external else {})}
                     for name, n in sizes.items()},
            "rows": out_rows}


def _paired(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """``a`` minus the winner's ``b`` on the same images: the mean, its bootstrap CI and Wilcoxon's p."""
    difference = bootstrap_ci(np.asarray(a) - np.asarray(b))
    test = paired_wilcoxon({str(i): float(v) for i, v in enumerate(a)}, {str(i): float(v) for i, v in enumerate(b)})
    return {"mean_difference": difference.mean, "low": difference.low, "high": difference.high,
            "p_value": test.p_value, "n": difference.n}


def _keep_members(members: list[str], checkpoints: dict[str, Any], configs: dict[str, dict], ours: Path,
                  tta: bool) -> None:
    """The ensemble's models, best first, for ``predict --ensemble K`` (K up to len(members))."""
    folder = ours / ENSEMBLE_DIR
    shutil.rmtree(folder, ignore_errors=True)
    if len(members) < 2:
        return
    folder.mkdir(parents=True)
    listed = []
    for rank, trial_id in enumerate(members, 1):
        name = f"{rank}-{trial_id}.keras"
        with checkpoints[trial_id].as_directory() as source:
            export_archive(Path(source), folder / name)
        listed.append({"trial_id": trial_id, "file": name, "image_size": int(configs[trial_id]["image_size"])})
    write_json(folder / "ensemble.json", {"threshold": float(configs[members[0]]["threshold"]), "tta": tta,
                                          "members": listed})


def _print(body: dict) -> None:
    names = list(body["sets"])
    print("generalisation (per-image Dice at original resolution, 95% bootstrap CI; median; share of images "
          f"below Dice {FAILURE_DICE}; S_alpha; MAE):")
    for row in body["rows"]:
        cells = [f"{name} {s['dice']:.4f} [{s['dice_low']:.4f}, {s['dice_high']:.4f}] median {s['median']:.3f} "
                 f"fail {s['failures']:.0%} S {s.get('s_alpha', float('nan')):.3f} MAE {s.get('mae', float('nan')):.3f}"
                 for name in names if (s := row["sets"].get(name))]
        print(f"  {row['label']:<32} " + "; ".join(cells), flush=True)
