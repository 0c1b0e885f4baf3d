"""A hand-written experiment folder (docs/experiment-layout.md) for fast report tests: no Ray, no training.

Every free-text field can carry a hostile string, to check that the report escapes all of them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

HOSTILE = "<img src=x onerror=alert(1)>"
CLOSER = "</script><script>alert(2)</script>"

SPACE = {
    "model": {"choices": ["unet", "encoder_decoder"]},
    "base_width": {"choices": [4, 8], "when": {"model": ["unet"]}},
    "learning_rate": {"low": 1.0e-4, "high": 1.0e-2, "log": True},
    "encoder_weights": {"choices": [HOSTILE, "none"]},
}


def write_experiment(root: Path, name: str = "exp", families: tuple[str, ...] = ("unet", "encoder_decoder"),
                     trials_per_family: int = 3, n_test: int = 30, stem: str = "img",
                     shift: float = 0.2, seed: int = 0) -> Path:
    """``families`` x ``trials_per_family`` trials; the first family scores ``shift`` higher per image."""
    rng = np.random.default_rng(seed)
    exp = root / name
    ours = exp / "polyp_ray"
    (ours / "trials").mkdir(parents=True)
    stems = [f"{stem}{i:03d}" for i in range(n_test)]
    rows = []
    for f, family in enumerate(families):
        for t in range(trials_per_family):
            trial_id = f"{family[:4]}{t}{CLOSER if t == 1 else ''}"
            params = _params(family, t)
            base = 0.45 + (shift if f == 0 else 0.0) - 0.05 * t
            rows.append(_trial(exp, trial_id, family, params, base, stems, rng))
    pd.DataFrame(rows).to_csv(ours / "trials.csv", index=False)
    _provenance(ours, name, stems)
    return exp


def _params(family: str, t: int) -> dict:
    params = {"model": family, "learning_rate": [1e-3, 3e-4, 5e-3][t % 3],
              "encoder_weights": [HOSTILE, "none"][t % 2]}
    if family == "unet":
        params["base_width"] = [4, 8][t % 2]
    return params


def _trial(exp: Path, trial_id: str, family: str, params: dict, base: float, stems: list[str], rng) -> dict:
    folder = exp / f"tune_trial_{len(list(exp.glob('tune_trial_*')))}"
    folder.mkdir()
    (folder / "params.json").write_text(json.dumps(params))
    epochs = 4 if base > 0.5 else 1
    lines = [{"epoch": e, "val_dice": base * e / epochs, "val_iou": base * e / epochs / 1.5,
              "trial_id": trial_id, "config": params} for e in range(1, epochs + 1)]
    (folder / "result.json").write_text("".join(json.dumps(line) + "\n" for line in lines))
    dice = np.clip(base + 0.1 * rng.standard_normal(len(stems)), 0, 1)
    per_image = [{"stem": s, "dice": float(d), "iou": float(d / (2 - d)),
                  "truth_fraction": float(rng.random() / 4), "pred_fraction": 0.1}
                 for s, d in zip(stems, dice, strict=True)]
    test = {"trial_id": trial_id, "checkpoint_epoch": epochs, "threshold": 0.5, "protocol": "original_resolution",
            "summary": {"dice": float(dice.mean()), "iou": 0.3, "miou_2class": 0.6, "n_images": len(stems)},
            "per_image": per_image, "n_params": 1000, "image_size": 32}
    target = exp / "polyp_ray" / "trials" / trial_id
    target.mkdir(parents=True)
    (target / "test_metrics.json").write_text(json.dumps(test))
    return {"trial_id": trial_id, **params, "image_size": 32, "batch_size": 4, "status": "TERMINATED",
            "epochs_run": epochs, "stopped_early": epochs < 4, "best_epoch": epochs, "best_val_dice": base,
            "best_val_iou": base / 1.5, "best_val_miou_2class": 0.6, "test_dice": float(dice.mean()),
            "test_iou": 0.3, "test_miou_2class": 0.6, "n_params": 1000, "wall_s": 30.0, "cpu": 1.0,
            "gpu": 0.0, "cpu_hours": 30 / 3600, "gpu_hours": 0.0, "node_ip": "127.0.0.1",
            "trial_dir": str(folder)}


def _provenance(ours: Path, name: str, stems: list[str]) -> None:
    job = {"name": HOSTILE, "num_samples": 6, "grace_period": 1, "reduction_factor": 2,
           "metric": "val_dice", "mode": "max",
           "trial": {"epochs": 4, "model": "unet", "base_width": 8, "learning_rate": 1e-3}}
    (ours / "job.yaml").write_text(yaml.safe_dump(job))
    (ours / "searchspace.yaml").write_text(yaml.safe_dump(SPACE, sort_keys=False))
    (ours / "command.txt").write_text(f"python -m polyp_ray.search --set 'name={CLOSER}'\n")
    (ours / "dataset.json").write_text(json.dumps({
        "root": f"/data/{HOSTILE}", "layout": "kvasir", "n_pairs": 100, "sha256": "ab" * 32, "split_seed": 0,
        "split": {"train": ["t"], "val": ["v"], "test": stems}, "groups_csv": None}))
    (ours / "environment.json").write_text(json.dumps({"python": "3.11", "polyp-ray": CLOSER}))
