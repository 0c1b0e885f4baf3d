"""The benchmarks' reference, bench/notebook_baseline.py (the FAITHFUL notebook port), still is the
notebook: its U-Net has the notebook's parameter count and its pipeline yields the notebook's batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def test_notebook_unet_has_the_notebooks_parameter_count() -> None:
    from bench.notebook_baseline import NOTEBOOK_PARAMS, build_notebook_unet

    model = build_notebook_unet(128, batch_size=1)
    assert NOTEBOOK_PARAMS == 61_240_193
    assert model.count_params() == 61_240_193


def test_notebook_pipeline_yields_batches_of_four(tmp_path: Path) -> None:
    from bench.notebook_baseline import list_kvasir_pairs, notebook_pipeline

    rng = np.random.default_rng(0)
    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
    for i in range(8):  # Kvasir-like: JPEG pairs of a size other than 128, masks with JPEG noise
        image = rng.integers(0, 255, (90, 110, 3), dtype=np.uint8)
        mask = np.zeros((90, 110, 3), dtype=np.uint8)
        mask[20:60, 30:80] = 255
        Image.fromarray(image).save(tmp_path / "images" / f"p{i}.jpg")
        Image.fromarray(mask).save(tmp_path / "masks" / f"p{i}.jpg")
    x, y = list_kvasir_pairs(tmp_path)
    batches = list(notebook_pipeline(x, y, image_size=128, batch_size=4, is_train=True))
    assert len(batches) == 2
    for images, masks in batches:
        assert tuple(images.shape) == (4, 128, 128, 3)
        assert tuple(masks.shape) == (4, 128, 128, 1)
        assert images.dtype.name == "float32" and masks.dtype.name == "float32"
        assert 0.0 <= float(np.min(images)) and float(np.max(images)) <= 1.0


def test_bench_search_replays_a_peer_and_summarises() -> None:
    """bench_search's plumbing without Ray: the surrogate fits, Optuna's peer replays on it within its
    budget, and the table reads the trace (regrets never negative, the full budget no worse than 1/4)."""
    from bench.bench_search import optuna_points, summarise
    from bench.search_replay import replay_optuna
    from bench.search_surrogate import fit, read_curves

    surrogate = fit(read_curves()[:20])
    trace = replay_optuna(optuna_points, surrogate, seed=0, budget_s=120.0, slots=2, num_samples=20)
    assert [t[0] for t in trace] == list(range(1, len(trace) + 1))
    assert all(t[1] < 120.0 for t in trace[:-1])  # it stops at the epoch that fills the budget
    best = max(t[2] for t in trace)
    budget = {"budget_s": 120.0, "max_concurrent": 2, "num_samples": 20, "grace_period": 1}
    (line,) = summarise({"peer": [trace, trace]}, best, budget)
    cells = [c.split(" [")[0] for c in line.strip("| ").split(" | ")[1:4]]
    assert all(float(c) >= 0.0 for c in cells) and float(cells[2]) <= float(cells[0])


def test_replay_pool_restarts_a_worker_that_dies_and_loses_no_task(tmp_path: Path) -> None:
    """A worker whose local Ray times out at start dies; its task goes back to the queue and a new worker
    takes it, so every task ends in results once (one slot, and a fake worker that dies the first time it
    is started: without the restart nothing would be done)."""
    import json

    from bench.search_replay import run_pool

    script = tmp_path / "worker.py"
    script.write_text(
        "import json, sys\nfrom pathlib import Path\n"
        f"marker = Path({str(tmp_path / 'died')!r})\n"
        "if not marker.exists():\n    marker.touch()\n    sys.exit(1)\n"
        "for line in sys.stdin:\n"
        "    print('@@' + json.dumps({**json.loads(line), 'wall_s': 0.0, 'trace': []}), flush=True)\n")
    results = tmp_path / "results.jsonl"
    tasks = [{"budget": "b", "label": "l", "seed": seed} for seed in range(5)]
    run_pool(tasks, 1, tmp_path, results, script)
    done = sorted(json.loads(line)["seed"] for line in results.read_text().splitlines())
    assert done == list(range(5))
    assert (tmp_path / "died").exists()  # the first worker did die


def test_replay_pool_says_when_every_worker_gave_up_and_tasks_are_left(tmp_path: Path) -> None:
    """A worker that dies every time it starts (Ray never comes up) spends the slot's restarts; the pool
    then raises naming how many replays were not done, instead of returning as if the run were complete."""
    from bench.search_replay import run_pool

    script = tmp_path / "worker.py"
    script.write_text("import sys\nsys.exit(1)\n")
    results = tmp_path / "results.jsonl"
    tasks = [{"budget": "b", "label": "l", "seed": seed} for seed in range(3)]
    with pytest.raises(RuntimeError, match="3 of 3 replays not done: every worker died 2 times"):
        run_pool(tasks, 1, tmp_path, results, script, restarts=1)
    assert not results.exists()


def test_seeds_finished_counts_from_seed_zero_up_to_the_first_gap() -> None:
    """The report's seed count: a strategy with seeds 0-2 and 4 has 3 usable seeds (the tables take the
    same seeds for every row), one with none has 0, and the count never passes the seeds asked for."""
    from bench.bench_search import seeds_finished

    runs = {("kvasir", "a", seed): {} for seed in (0, 1, 2, 4)} | {("cpu-hour", "b", seed): {} for seed in range(9)}
    assert seeds_finished(runs, "kvasir", "a", 20) == 3
    assert seeds_finished(runs, "kvasir", "b", 20) == 0
    assert seeds_finished(runs, "cpu-hour", "b", 5) == 5
    assert seeds_finished(runs, "cpu-hour", "b", 20) == 9
