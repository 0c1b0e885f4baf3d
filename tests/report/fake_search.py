"""A fabricated search of any size (docs/experiment-layout.md), for the report's scale tests and
bench/bench_report.py: the files a real search writes, with ASHA's rungs, concurrent trials on a timeline
(Tune's ``timestamp`` and ``time_total_s``), encoder families, per-image test scores and a few trials
whose test scoring failed. No Ray, no training: 2,000 trials are written in seconds.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ENCODERS = ("conv", "vgg16", "resnet50", "efficientnetb0", "mobilenetv2")
SPACE = {
    "model": {"choices": ["unet", "encoder_decoder"]},
    "encoder": {"choices": list(ENCODERS)},
    "base_width": {"choices": [8, 16, 32]},
    "image_size": {"choices": [128, 192, 256]},
    "batch_size": {"choices": [4, 8, 16]},
    "aug_strength": {"low": 0.0, "high": 1.0},
    "learning_rate": {"low": 1.0e-5, "high": 1.0e-2, "log": True},
    "loss": {"choices": ["bce_dice", "dice"]},
    "freeze_encoder_epochs": {"choices": [0, 2], "when": {"encoder": list(ENCODERS[1:])}},
}
MAX_EPOCHS, GRACE, FACTOR, CONCURRENT = 9, 1, 3, 16  # ASHA rungs at epochs 1 and 3
CPU, GPU = 2.0, 0.25  # what each trial held
START = 1_790_000_000.0  # the search's first second (unix time)
TEST_ERROR_EVERY = 250  # one trial in this many: its checkpoint could not be scored on the test split
ERROR_MESSAGE = "OSError: checkpoint_000003/model/model.weights.h5: truncated file"


def write_search(root: Path, n_trials: int, name: str | None = None, n_test: int = 150, seed: int = 0,
                 test_error_every: int = TEST_ERROR_EVERY) -> Path:
    """An experiment folder ``root/name`` with ``n_trials`` finished trials, every ``test_error_every``-th
    of them without test scores (its scoring failed); returns its path."""
    rng = np.random.default_rng(seed)
    exp = root / (name or f"search-{n_trials}")
    ours = exp / "polyp_ray"
    (ours / "trials").mkdir(parents=True)
    stems = [f"cju{i:05d}" for i in range(n_test)]
    difficulty = rng.beta(2, 2, n_test) * 0.4  # some test images are hard for every trial
    slots = np.zeros(CONCURRENT)  # when each of the concurrent trial slots is next free (seconds)
    rows = []
    for i in range(n_trials):
        params = _sample(rng)
        slot = int(np.argmin(slots))
        failed = i % test_error_every == test_error_every - 1
        row, end = _trial(exp, f"{i:05d}{rng.integers(0, 16**3):03x}", i, params, float(slots[slot]), stems,
                          difficulty, rng, failed)
        slots[slot] = end
        rows.append(row)
    pd.DataFrame(rows).to_csv(ours / "trials.csv", index=False)
    _provenance(ours, exp.name, stems, n_trials)
    return exp


def _sample(rng: np.random.Generator) -> dict:
    params = {"model": str(rng.choice(["unet", "encoder_decoder"], p=[0.7, 0.3])),
              "encoder": str(rng.choice(ENCODERS)), "base_width": int(rng.choice([8, 16, 32])),
              "image_size": int(rng.choice([128, 192, 256])), "batch_size": int(rng.choice([4, 8, 16])),
              "aug_strength": float(rng.random()), "learning_rate": float(10 ** rng.uniform(-5, -2)),
              "loss": str(rng.choice(["bce_dice", "dice"]))}
    if params["encoder"] != "conv":
        params["freeze_encoder_epochs"] = int(rng.choice([0, 2]))
    return params


def _quality(params: dict, rng: np.random.Generator) -> float:
    """The val Dice a trial would reach with every epoch: the learning rate matters most, then the model."""
    lr = -abs(math.log10(params["learning_rate"]) + 3.3) * 0.12  # best near 5e-4
    model = 0.05 if params["model"] == "unet" else -0.05
    encoder = {"conv": 0.0, "vgg16": 0.03, "resnet50": 0.05, "efficientnetb0": 0.06, "mobilenetv2": 0.02}
    return float(np.clip(0.72 + lr + model + encoder[params["encoder"]] + 0.04 * rng.standard_normal(), 0.02, 0.93))


def _trial(exp: Path, trial_id: str, index: int, params: dict, start: float, stems: list[str],
           difficulty: np.ndarray, rng: np.random.Generator, failed: bool) -> tuple[dict, float]:
    quality = _quality(params, rng)
    # ASHA keeps about one trial in FACTOR at each rung: the better ones, with noise.
    epochs = 1 if quality + 0.05 * rng.standard_normal() < 0.6 else (
        3 if quality + 0.05 * rng.standard_normal() < 0.72 else MAX_EPOCHS)
    epoch_s = 20.0 * (params["image_size"] / 128) ** 2 * (1.0 if params["encoder"] == "conv" else 1.8)
    folder = exp / f"run_trial_{trial_id}_{index}_model={params['model']}_2026-11-26_10-00-00"
    folder.mkdir()
    (folder / "params.json").write_text(json.dumps(params))
    lines, best, total = [], 0.0, 0.0
    for epoch in range(1, epochs + 1):
        total += epoch_s * (1.0 + 0.1 * rng.random())
        dice = float(np.clip(quality * (1 - math.exp(-epoch / 2.0)) + 0.02 * rng.standard_normal(), 0, 1))
        best = max(best, dice)
        lines.append({"epoch": epoch, "loss": 1 - dice, "val_loss": 1.05 - dice, "val_dice": dice,
                      "val_iou": dice / (2 - dice), "best_val_dice": best, "epoch_s": epoch_s, "cpu": CPU,
                      "gpu": GPU, "trial_id": trial_id, "training_iteration": epoch, "time_total_s": total,
                      "timestamp": int(START + start + total), "done": epoch == epochs, "config": params})
    (folder / "result.json").write_text("".join(json.dumps(line) + "\n" for line in lines))
    best_line = max(lines, key=lambda line: line["val_dice"])
    row = {"trial_id": trial_id, **params, "precision": "float32", "status": "TERMINATED", "epochs_run": epochs,
           "stopped_early": epochs < MAX_EPOCHS, "best_epoch": best_line["epoch"], "best_val_dice": best,
           "best_val_iou": best / (2 - best), "best_val_miou_2class": 0.5 + best / 2, "wall_s": total,
           "cpu": CPU, "gpu": GPU, "cpu_hours": total * CPU / 3600, "gpu_hours": total * GPU / 3600,
           "node_ip": "10.0.0.2", "node_id": "n1", "trial_dir": str(folder),
           "checkpoint": str(folder / "checkpoint_000001")}
    if failed:
        row["test_error"] = ERROR_MESSAGE
    else:
        row.update(_test(exp, trial_id, best, best_line["epoch"], params, stems, difficulty, rng))
    return row, start + total


def _test(exp: Path, trial_id: str, best: float, epoch: int, params: dict, stems: list[str],
          difficulty: np.ndarray, rng: np.random.Generator) -> dict:
    dice = np.clip(best + 0.2 - difficulty + 0.1 * rng.standard_normal(len(stems)), 0, 1)
    per_image = [{"stem": s, "dice": round(float(d), 4), "iou": round(float(d / (2 - d)), 4),
                  "truth_fraction": round(0.02 + 0.3 * k / len(stems), 4), "pred_fraction": 0.1,
                  "height": 529, "width": 622} for k, (s, d) in enumerate(zip(stems, dice, strict=True))]
    summary = {"dice": float(dice.mean()), "iou": float(np.mean(dice / (2 - dice))),
               "miou_2class": 0.5 + float(dice.mean()) / 2, "n_images": len(stems)}
    body = {"trial_id": trial_id, "checkpoint_epoch": epoch, "threshold": 0.5, "protocol": "original_resolution",
            "protocol_text": "per-image polyp Dice/IoU at each image's original resolution", "summary": summary,
            "per_image": per_image, "n_params": 1_000_000 * params["base_width"],
            "image_size": params["image_size"]}
    target = exp / "polyp_ray" / "trials" / trial_id
    target.mkdir(parents=True)
    (target / "test_metrics.json").write_text(json.dumps(body))
    return {"test_dice": summary["dice"], "test_iou": summary["iou"], "test_miou_2class": summary["miou_2class"],
            "n_params": body["n_params"]}


def _provenance(ours: Path, name: str, stems: list[str], n_trials: int) -> None:
    job = {"name": name, "searchspace": "searchspace.yaml", "num_samples": n_trials,
           "grace_period": GRACE, "reduction_factor": FACTOR, "metric": "val_dice", "mode": "max",
           "max_concurrent": CONCURRENT, "resources": {"cpu": CPU, "gpu": GPU},
           "trial": {"epochs": MAX_EPOCHS, "encoder_weights": "imagenet", "precision": "float32"}}
    (ours / "job.yaml").write_text(yaml.safe_dump(job, sort_keys=False))
    (ours / "searchspace.yaml").write_text(yaml.safe_dump(SPACE, sort_keys=False))
    (ours / "command.txt").write_text(f"python -m polyp_ray.search --job jobs/kvasir.yaml --name {name}\n")
    (ours / "dataset.json").write_text(json.dumps({
        "root": "/data/Kvasir-SEG", "layout": "kvasir", "n_pairs": 1000, "sha256": "cd" * 32, "split_seed": 0,
        "split": {"train": [f"t{i}" for i in range(700)], "val": [f"v{i}" for i in range(150)], "test": stems},
        "groups_csv": None, "group_source": "near-duplicates", "n_groups": 994, "largest_group": 2,
        "cross_split_twins": []}))
    (ours / "environment.json").write_text(json.dumps({"python": "3.11", "optuna": "5", "polyp_ray": "0.1"}))
