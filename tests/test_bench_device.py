"""bench/device/gpu_check.py, the check a lent GPU runs, cannot rot between leases: it runs here on the
CPU at tiny sizes, on JAX, with no TensorFlow or Ray imported, and its FLOP count is the textbook one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHECK = REPO / "bench" / "device" / "gpu_check.py"


@pytest.mark.slow
def test_gpu_check_runs_on_jax_without_tensorflow_and_skips_what_was_measured(tmp_path: Path) -> None:
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    # mixed_float16: the loss-scaled path, the one most likely to break. The lent H200 ran every other
    # encoder through the same worker (bench/device/results/h200.jsonl); here conv keeps the suite short.
    run = subprocess.run([sys.executable, str(CHECK), "--tiny", "--encoders", "conv", "--precisions",
                          "mixed_float16", "--out", str(tmp_path)], env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    records = [json.loads(line) for line in (tmp_path / "gpu_check.jsonl").read_text().splitlines()]
    kinds = sorted(r["kind"] for r in records)
    assert kinds == ["peak", "train", "train", "train"]  # the peak, the pair, the pool's one
    for r in records:
        assert r["tensorflow_loaded"] is False and r["ray_loaded"] is False, r
        assert r["device"] and "error" not in r
    trained = [r for r in records if r["kind"] == "train" and "share" not in r]
    assert [(r["encoder"], r["size"], r["precision"]) for r in trained] == [("conv", 32, "mixed_float16")]
    for r in trained:
        assert r["images_per_s"] > 0 and r["loss_finite"] and r["params"] > 0
        assert r["train_gflop_per_image"] > 0
    assert "two processes on one GPU (conv, 32 px, mixed_float16, batch 2):" in run.stdout
    assert "| conv | 32 | mixed_float16 | 2 |" in run.stdout
    assert (tmp_path / "gpu_check.md").read_text().count("| conv | 32 |") == 1

    # A second lease carries on: what the first measured is left out, and nothing else is run.
    again = subprocess.run([sys.executable, str(CHECK), "--tiny", "--precisions", "mixed_float16",
                            "--encoders", "conv", "--share-seconds", "0", "--skip-measured",
                            str(tmp_path / "gpu_check.jsonl"), "--out", str(tmp_path / "again")],
                           env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 1  # nothing left to measure is not a result
    assert "| conv |" not in again.stdout and "not run (--share-seconds 0)" in again.stdout


def test_training_flops_count_every_convolution_three_times() -> None:
    import keras

    backend = os.environ.get("KERAS_BACKEND")
    sys.path.insert(0, str(REPO / "bench" / "device"))
    from _worker import train_flops_per_image

    # Importing the worker must leave the backend alone: the suite's later training subprocesses
    # inherit this process's environment (a leaked "jax" once broke every trial after this test).
    assert os.environ.get("KERAS_BACKEND") == backend

    image = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(image)  # 16*16 outputs, 3*3*3 inputs each, 8 filters
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same")(x)  # 8*8 outputs, 3*3 per channel
    inner = keras.Model(image, x)  # a nested model is counted through, as our encoders are
    outer_in = keras.Input((16, 16, 3))
    y = keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same")(inner(outer_in))  # per input pixel
    model = keras.Model(outer_in, keras.layers.Dense(2)(keras.layers.Flatten()(y)))
    forward = (2 * 16 * 16 * 3 * 3 * 3 * 8 + 2 * 8 * 8 * 3 * 3 * 8 + 2 * 8 * 8 * 3 * 3 * 8 * 4
               + 2 * (16 * 16 * 4) * 2)
    assert train_flops_per_image(model) == 3 * forward


def test_gpu_check_refuses_a_size_that_is_no_multiple_of_32() -> None:
    run = subprocess.run([sys.executable, str(CHECK), "--sizes", "100"], capture_output=True, text=True)
    assert run.returncode == 2 and "--sizes: 100: must be a multiple of 32" in run.stderr
