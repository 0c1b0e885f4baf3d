"""Input throughput, polyp_ray's pipeline vs the notebook's, side by side on real Kvasir-SEG; and how long
a training step of our model waits for input.

Part 1 (no model), per image size, on the same training-split files:
  * notebook: ``bench.notebook_baseline.notebook_pipeline`` (FAITHFUL port: read + decode JPEG + resize
    every file every epoch, augment, shuffle(10 n), batch 4, no prefetch), repeated as the notebook's
    ``fit`` does, one persistent iterator;
  * ours: ``prepare_data(DataConfig(path, limit=N), size)`` (decode once, cached in $POLYP_RAY_CACHE,
    memory-mapped) + ``polyp_ray.data.pipeline.train_dataset(images, masks, 4, aug_strength, seed)``;
  Each iterates ``epochs`` epochs of ``n_train // 4`` batches; the first epoch is warm-up, the figure is
  the median images/s of the others (single epochs swing by up to 2x on 2 vCPUs).

Part 2 (``--no-step`` to skip): our U-Net (``build_model("unet", 128, --step-base)``, mixed_bfloat16,
Adam, our bce_dice loss, compiled) trained with ``model.train_on_batch`` on batches drawn from our
pipeline: per step ``next(iterator)`` and the whole step are timed; waiting fraction = sum of next()
time / sum of step time over the timed steps. The same number of steps on one fixed batch (no pipeline
at all) shows what the background pipeline threads cost the step.

    python bench/bench_pipeline.py [--images 1000] [--sizes 128 256] [--step-base 64] [--step-steps 12]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import add_common_args, machine_line, use_bench_cache  # noqa: E402
from bench._machine import OthersMeter, wait_idle  # noqa: E402


def time_epochs(dataset, steps: int, epochs: int, batch_size: int) -> list[float]:
    """images/s of each of ``epochs`` passes of ``steps`` batches over one persistent iterator."""
    iterator = iter(dataset)
    rates = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        for _ in range(steps):
            images, _masks = next(iterator)
            assert images.shape[0] == batch_size
        rates.append(steps * batch_size / (time.perf_counter() - t0))
    del iterator
    return rates


def pipeline_part(args) -> dict[int, dict[str, dict]]:
    import tensorflow as tf

    from bench.notebook_baseline import notebook_pipeline
    from polyp_ray.config import DataConfig
    from polyp_ray.data.dataset import describe_dataset, prepare_data
    from polyp_ray.data.pipeline import train_dataset

    config = DataConfig(path=args.data, limit=args.images)
    _, pairs = describe_dataset(config)
    by_stem = {p.stem: p for p in pairs}
    results: dict[int, dict[str, dict]] = {}
    for size in args.sizes:
        t0 = time.perf_counter()
        data = prepare_data(config, size)
        prep_s = time.perf_counter() - t0
        train = data.splits["train"]
        n = len(train)
        steps = n // args.batch_size
        files = [by_stem[s] for s in train.stems]
        print(f"\n{size} px: {n} training images ({steps} batches of {args.batch_size} per epoch); "
              f"prepare_data {prep_s:.1f} s (decodes on the first call, then a cached memory map)", flush=True)
        images, masks = tf.convert_to_tensor(train.images), tf.convert_to_tensor(train.masks)
        names = ["notebook", "ours"]
        results[size] = {}
        for name in names:
            if name == "notebook":
                epochs = args.notebook_epochs
                dataset = notebook_pipeline([str(p.image) for p in files], [str(p.mask) for p in files],
                                            image_size=size, batch_size=args.batch_size, is_train=True).repeat()
            else:
                epochs = args.ours_epochs
                dataset = train_dataset(images, masks, args.batch_size, args.aug_strength, args.seed)
            wait_idle(args.wait_idle)
            meter = OthersMeter()
            meter.start()
            rates = time_epochs(dataset, steps, epochs, args.batch_size)
            del dataset
            others = meter.stop()
            steady = rates[1:]
            row = {"median": statistics.median(steady), "min": min(steady), "max": max(steady),
                   "first": rates[0], "epochs": epochs, "others": others}
            results[size][name] = row
            print(f"  {name:9s} steady {row['median']:8.0f} images/s (median of {len(steady)} epochs after the "
                  f"first; range {row['min']:.0f}-{row['max']:.0f}; first epoch {row['first']:.0f}; "
                  f"other_processes_cores {others:.2f})", flush=True)
    return results


def step_part(args) -> dict:
    """How long training steps wait for our pipeline (our U-Net, mixed_bfloat16, train_on_batch)."""
    import keras
    import numpy as np
    import tensorflow as tf

    from polyp_ray.config import DataConfig
    from polyp_ray.data.dataset import prepare_data
    from polyp_ray.data.pipeline import train_dataset
    from polyp_ray.losses import get_loss
    from polyp_ray.models import build_model

    size = 128
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    data = prepare_data(DataConfig(path=args.data, limit=args.images), size)
    train = data.splits["train"]
    stream = train_dataset(tf.convert_to_tensor(train.images), tf.convert_to_tensor(train.masks),
                           args.step_batch, args.aug_strength, args.seed)
    model = build_model("unet", size, args.step_base)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=get_loss("bce_dice"))
    iterator = iter(stream)
    for _ in range(args.step_warmup):  # tracing, oneDNN primitive creation
        x, y = next(iterator)
        model.train_on_batch(x, y)
    wait_idle(args.wait_idle)
    meter = OthersMeter()
    meter.start()
    waits, steps = [], []
    for _ in range(args.step_steps):
        t0 = time.perf_counter()
        x, y = next(iterator)
        t1 = time.perf_counter()
        model.train_on_batch(x, y)
        t2 = time.perf_counter()
        waits.append(t1 - t0)
        steps.append(t2 - t0)
    others = meter.stop()
    # the same model and step on one fixed batch: no pipeline threads at all
    fixed_x, fixed_y = np.asarray(x), np.asarray(y)
    del iterator
    time.sleep(1.0)
    meter.start()
    fixed = []
    for _ in range(args.step_steps):
        t0 = time.perf_counter()
        model.train_on_batch(fixed_x, fixed_y)
        fixed.append(time.perf_counter() - t0)
    others_fixed = meter.stop()
    keras.mixed_precision.set_global_policy("float32")
    return {"base": args.step_base, "batch": args.step_batch, "steps": args.step_steps,
            "wait_fraction": sum(waits) / sum(steps), "max_wait_s": max(waits),
            "median_step_s": statistics.median(steps), "median_fixed_step_s": statistics.median(fixed),
            "mean_step_s": sum(steps) / len(steps), "mean_fixed_step_s": sum(fixed) / len(fixed),
            "others": others, "others_fixed": others_fixed, "params": model.count_params()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(ap)
    ap.add_argument("--images", type=int, default=1000, help="first N Kvasir pairs (default all 1000); "
                    "both pipelines run over the training split of these (70%%)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--aug-strength", type=float, default=0.5, help="ours: 0.5 is about the notebook's augmentation")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--notebook-epochs", type=int, default=4, help="incl. the warm-up epoch (default 4)")
    ap.add_argument("--ours-epochs", type=int, default=8, help="incl. the warm-up epoch (default 8)")
    ap.add_argument("--no-step", action="store_true", help="skip part 2 (the training-step waiting fraction)")
    ap.add_argument("--step-base", type=int, default=64, help="U-Net base width in part 2 (64 = the notebook's)")
    ap.add_argument("--step-batch", type=int, default=4)
    ap.add_argument("--step-steps", type=int, default=12, help="timed steps in part 2")
    ap.add_argument("--step-warmup", type=int, default=3)
    args = ap.parse_args(argv)
    if min(args.notebook_epochs, args.ours_epochs) < 2:
        ap.error("epochs must be at least 2 (the first is warm-up)")
    use_bench_cache()

    import tensorflow as tf

    started = time.perf_counter()
    print(machine_line())
    print(f"input pipelines on {args.data} (first {args.images} pairs), batch {args.batch_size}, TF {tf.__version__}")
    results = pipeline_part(args)
    step = None if args.no_step else step_part(args)

    print(f"\n==== bench_pipeline summary ({time.perf_counter() - started:.0f} s) ====")
    print(machine_line())
    if step:
        slowdown = step["mean_step_s"] / step["mean_fixed_step_s"] - 1
        print(f"training step (unet base {step['base']}, {step['params']:,} params, 128 px, batch {step['batch']}, "
              f"mixed_bfloat16, train_on_batch, {step['steps']} timed steps): mean step {step['mean_step_s']:.3f} s, "
              f"waiting for input {100 * step['wait_fraction']:.2f}% of step time (longest wait "
              f"{1e3 * step['max_wait_s']:.1f} ms; target < 5%); same steps on a fixed batch "
              f"{step['mean_fixed_step_s']:.3f} s ({100 * slowdown:+.1f}% with the pipeline running); "
              f"other_processes_cores {step['others']:.2f}/{step['others_fixed']:.2f}")
    for size, rows in results.items():
        nb = rows["notebook"]["median"]
        others = max(r["others"] for r in rows.values())
        print(f"{size} px: notebook {nb:.0f} images/s, ours {rows['ours']['median']:.0f} images/s "
              f"(max other_processes_cores {others:.2f})")
    ratios = ", ".join(f"{size} px {rows['ours']['median'] / rows['notebook']['median']:.1f}x"
                       for size, rows in results.items())
    print(f"RATIO ours/notebook steady-state input throughput: {ratios} (target >= 20x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
