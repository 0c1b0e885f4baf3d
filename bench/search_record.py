"""Record real learning curves for bench_search.py's surrogate: one table, made once.

    nice python bench/search_record.py --out bench/search_curves.jsonl [--configs 48] [--epochs 12]
        [--shard 0/2]

Each configuration is a point of the shipped CPU space (bench_quality.py's SPACE) at small image sizes
(SIZES replaces its 128/160/192 px, which a 2-core machine cannot record 60 times in an hour), placed by
a scrambled Sobol design over the space's axes (a categorical axis is cut into equal slices). Each is
trained by the project's own ``run_trial`` for ``--epochs`` epochs (its cosine schedule over that many
epochs, as a trial of a search with that max_t) on the first ``--limit`` Kvasir-SEG pairs, and every
epoch's val Dice and seconds are appended as one JSON line per configuration. A run skips the
configurations its output already holds, so shards (``--shard i/n``) run side by side and a stopped
recording continues.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import default_kvasir_dir, machine_line, use_bench_cache  # noqa: E402

SIZES = (32, 64, 96)
# The shipped CPU space (bench_quality.py), its image sizes scaled down: the axes of the design.
AXES: dict[str, Any] = {
    "model": ("unet", "encoder_decoder"),
    "base_width": (8, 16, 24),
    "image_size": SIZES,
    "batch_size": (4, 8, 16),
    "aug_strength": (0.0, 1.0),
    "learning_rate": (3.0e-4, 1.0e-2, "log"),
    "loss": ("bce_dice", "dice"),
}
CONTINUOUS = ("aug_strength", "learning_rate")


def design(count: int, seed: int = 0) -> list[dict[str, Any]]:
    """``count`` points of AXES by a scrambled Sobol sequence (space-filling in every axis)."""
    from scipy.stats import qmc

    unit = qmc.Sobol(d=len(AXES), scramble=True, seed=seed).random(count)
    return [point_at(row) for row in unit]


def point_at(row: Any) -> dict[str, Any]:
    """A point of AXES from a row of numbers in [0, 1)."""
    point: dict[str, Any] = {}
    for u, (name, axis) in zip(row, AXES.items(), strict=True):
        if name in CONTINUOUS:
            low, high = axis[0], axis[1]
            if len(axis) == 3:
                point[name] = float(math.exp(math.log(low) + u * (math.log(high) - math.log(low))))
            else:
                point[name] = float(low + u * (high - low))
        else:
            point[name] = axis[min(int(u * len(axis)), len(axis) - 1)]
    return point


class Recorder:
    """A reporter that keeps each epoch's row (no checkpoints kept, nothing restored)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def restore(self) -> None:
        return None

    def report(self, metrics: dict[str, Any], checkpoint_dir: Path) -> None:
        self.rows.append({k: metrics[k] for k in ("epoch", "val_dice", "val_loss", "epoch_s", "train_s")})


def record(point: dict[str, Any], data_cfg: dict[str, Any], epochs: int, prepared: Any) -> dict[str, Any]:
    import keras

    from polyp_ray.config import trial_from_dict
    from polyp_ray.trial import run_trial

    config = trial_from_dict({**point, "epochs": epochs, "evaluate_test": False, "cpu_threads": 1,
                              "data": data_cfg})
    reporter = Recorder()
    started = time.perf_counter()
    try:
        run_trial(config, reporter, prepared)
        error = None
    except Exception as err:  # noqa: BLE001 - a diverged configuration is a row too (the search meets it)
        error = f"{type(err).__name__}: {str(err)[:200]}"
    keras.backend.clear_session()
    return {**point, "epochs": epochs, "curve": reporter.rows, "error": error,
            "total_s": round(time.perf_counter() - started, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=default_kvasir_dir())
    ap.add_argument("--out", default=str(Path(__file__).with_name("search_curves.jsonl")))
    ap.add_argument("--configs", type=int, default=48)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--limit", type=int, default=300, help="Kvasir-SEG pairs (first by stem)")
    ap.add_argument("--shard", default="0/1", help="i/n: this process records configurations i, i+n, ...")
    args = ap.parse_args()
    use_bench_cache()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    index, shards = (int(x) for x in args.shard.split("/"))
    out = Path(args.out)
    done = set()
    if out.exists():
        done = {json.loads(line)["index"] for line in out.read_text().splitlines() if line.strip()}
    from polyp_ray.config import DataConfig
    from polyp_ray.data.dataset import describe, prepare_data
    from polyp_ray.runtime import configure_tensorflow

    configure_tensorflow("float32", 0, 1)
    data_cfg = {"path": args.data, "limit": args.limit, "val_fraction": 0.15, "test_fraction": 0.15,
                "split_seed": 0}
    described = describe(DataConfig(**data_cfg))
    prepared: dict[int, Any] = {}
    print(machine_line(), flush=True)
    for i, point in enumerate(design(args.configs)):
        if i % shards != index or i in done:
            continue
        size = point["image_size"]
        if size not in prepared:
            prepared[size] = prepare_data(DataConfig(**data_cfg), size, described)
        row = {"index": i, **record(point, data_cfg, args.epochs, prepared[size]), "load": os.getloadavg()[0]}
        with out.open("a") as sink:
            sink.write(json.dumps(row) + "\n")
        best = max((r["val_dice"] for r in row["curve"]), default=float("nan"))
        print(f"{i:3d} {point['model']:15s} w{point['base_width']:<2d} {size:3d}px b{point['batch_size']:<2d} "
              f"lr {point['learning_rate']:.1e} best {best:.3f} {row['total_s']:.0f} s", flush=True)


if __name__ == "__main__":
    main()
