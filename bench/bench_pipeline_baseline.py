"""Input throughput of the FAITHFUL notebook pipeline (bench/notebook_baseline.py), no model.

Iterates ``notebook_pipeline`` (decode + resize every file every epoch, augment, shuffle(10 n),
batch 4, no prefetch) over the first N real Kvasir-SEG pairs for several epochs, and prints images/s
per epoch; the steady-state figure is the median over the epochs after the first (on this 2-vCPU
machine single epochs swing by up to 2x).

    python bench/bench_pipeline_baseline.py [--data DIR] [--images 400] [--epochs 4] [--sizes 128 256]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._machine import OthersMeter, wait_idle  # noqa: E402
from bench.notebook_baseline import default_kvasir_dir, list_kvasir_pairs, notebook_pipeline  # noqa: E402


def measure(x, y, image_size: int, batch_size: int, epochs: int, is_train: bool) -> list[float]:
    ds = notebook_pipeline(x, y, image_size=image_size, batch_size=batch_size, is_train=is_train)
    rates = []
    for _ in range(epochs):
        n = 0
        t0 = time.perf_counter()
        for images, _labels in ds:
            n += int(images.shape[0])
        dt = time.perf_counter() - t0
        assert n == len(x), (n, len(x))
        rates.append(n / dt)
    return rates


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data",
        default=str(default_kvasir_dir()),
        help="Kvasir-SEG folder (default $POLYP_RAY_KVASIR or ../shared/data/Kvasir-SEG)",
    )
    ap.add_argument("--images", type=int, default=400, help="first N pairs (default 400)")
    ap.add_argument("--epochs", type=int, default=4, help="epochs per size; the first is warm-up (default 4)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256], help="image sizes (default 128 256)")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--eval", action="store_true", help="also time the is_train=False pipeline")
    ap.add_argument(
        "--wait-idle",
        type=float,
        default=120,
        help="before each size wait up to this many seconds for other processes to go idle",
    )
    args = ap.parse_args(argv)
    if args.epochs < 2:
        ap.error("--epochs must be at least 2 (the first epoch is warm-up)")

    import tensorflow as tf

    x, y = list_kvasir_pairs(args.data, args.images)
    print(
        f"notebook pipeline (faithful port), {len(x)} Kvasir-SEG pairs from {args.data}, "
        f"batch {args.batch_size}, TF {tf.__version__}, {os.cpu_count()} CPUs"
    )
    modes = [True, False] if args.eval else [True]
    for is_train in modes:
        for size in args.sizes:
            wait_idle(args.wait_idle)
            meter = OthersMeter()
            meter.start()
            rates = measure(x, y, size, args.batch_size, args.epochs, is_train)
            others = meter.stop()
            steady = statistics.median(rates[1:])  # epoch-to-epoch spread is large on 2 vCPUs
            per_epoch = ", ".join(f"{r:.1f}" for r in rates)
            print(
                f"  {'train' if is_train else 'eval '} {size:4d} px: steady (median) {steady:7.1f} images/s "
                f"(per epoch: {per_epoch}; {1e3 / steady:.2f} ms/image; other processes {others:.1f} cores)",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
