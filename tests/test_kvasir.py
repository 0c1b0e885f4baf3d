"""On the real Kvasir-SEG data (the folder named by POLYP_RAY_KVASIR): the debug trial learns, and a
small search separates good from bad configurations."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import search_command, write_job

pytestmark = [pytest.mark.kvasir, pytest.mark.slow]


def test_debug_trial_on_kvasir_beats_an_all_background_predictor(kvasir: Path, tmp_path: Path) -> None:
    out = tmp_path / "debug"
    proc = subprocess.run(
        search_command("--debug", "--set", f"data.path={kvasir}", "--set", "image_size=128", "--set", "base_width=8",
                       "--set", "epochs=3", "--set", f"output_dir={out}"),
        cwd=tmp_path, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    epoch_seconds = re.findall(r"^epoch +\d+ .* ([\d.]+) s ", proc.stdout, flags=re.M)
    assert len(epoch_seconds) == 3 and all(float(s) > 0 for s in epoch_seconds)
    test = json.loads((out / "test_metrics.json").read_text())
    # An all-background predictor scores 0 on every image (each Kvasir frame holds a polyp).
    assert test["summary"]["n_images"] == 200  # the default job keeps 20% for testing
    assert test["summary"]["dice"] > 0.3, test["summary"]


def test_search_on_kvasir_separates_configurations(kvasir: Path, tmp_path: Path) -> None:
    space = ("model: {choices: [unet]}\nbase_width: {choices: [4, 8]}\nimage_size: {choices: [128]}\n"
             "batch_size: {choices: [8]}\nlearning_rate: {low: 1.0e-5, high: 3.0e-3, log: true}\n")
    job = write_job(tmp_path, "kv", tmp_path / "exp", space=space, num_samples=4, max_epochs=2, grace_period=2,
                    max_concurrent=2, points_to_evaluate=[{"learning_rate": 1.0e-5}, {"learning_rate": 3.0e-3}],
                    data={"path": str(kvasir), "limit": 300, "val_fraction": 0.2, "test_fraction": 0.2})
    proc = subprocess.run(search_command("--job", str(job), "--name", "kv-run", "--no-report"), cwd=tmp_path,
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = pd.read_csv(tmp_path / "exp" / "kv-run" / "polyp_ray" / "trials.csv")
    assert len(table) == 4
    best, worst = table["best_val_dice"].max(), table["best_val_dice"].min()
    assert best - worst > 0.1, table[["learning_rate", "best_val_dice"]]
