"""The evaluation protocol on real data: the same trained model scored the old way (against masks
shrunk to the trial's input size) and the new way (probabilities resized to each image's original mask
size), and what scoring at original resolution costs per validation epoch.

    python bench/bench_protocol.py [--data DIR] [--epochs 5] [--image-size 128] [--base-width 8]

One fixed configuration (U-Net, Adam 1e-3, BCE+Dice, float32) is trained once on Kvasir-SEG's train
split; its test probabilities are then scored under both protocols. Prints the figures, the ratio last.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import default_kvasir_dir, machine_line, use_bench_cache  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=default_kvasir_dir())
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--base-width", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5, help="timing repeats of the scoring alone")
    args = ap.parse_args()
    use_bench_cache()

    from polyp_ray.config import DataConfig, TrialConfig
    from polyp_ray.data.dataset import prepare_data
    from polyp_ray.evaluation import original_counts, predict_probs, score_split
    from polyp_ray.metrics import summarise, summarise_counts
    from polyp_ray.trial import DebugReporter, run_trial

    print(machine_line(), flush=True)
    data_config = DataConfig(path=args.data, val_fraction=0.15, test_fraction=0.15, split_seed=0)
    config = TrialConfig(model="unet", base_width=args.base_width, image_size=args.image_size, batch_size=8,
                         aug_strength=0.5, learning_rate=1e-3, epochs=args.epochs, evaluate_test=False,
                         data=data_config)
    config.validate("bench")
    data = prepare_data(data_config, args.image_size)
    with tempfile.TemporaryDirectory() as out:
        result = run_trial(config, DebugReporter(Path(out)), data)
    model = result.model
    test, val = data.splits["test"], data.splits["val"]
    probs = predict_probs(model, test.images, 16)
    old = summarise(probs, test.masks.astype("float32"), config.threshold)
    new = score_split(probs, test, config.threshold)["summary"]
    vanished = sum(1 for i in range(len(test)) if test.masks[i].sum() == 0 and test.truths[i].sum() > 0)
    print(f"config: unet base {args.base_width}, {args.image_size} px, batch 8, {args.epochs} epochs, "
          f"best epoch {result.best_epoch}; test split {len(test)} images")
    print(f"old protocol (masks shrunk to {args.image_size} px): test Dice {old['dice']:.4f}  IoU {old['iou']:.4f}  "
          f"2-class mIoU {old['miou_2class']:.4f}")
    print(f"new protocol (original resolution):          test Dice {new['dice']:.4f}  IoU {new['iou']:.4f}  "
          f"2-class mIoU {new['miou_2class']:.4f}")
    print(f"test masks that vanish at {args.image_size} px: {vanished}")

    val_probs = predict_probs(model, val.images, 16)
    started = time.perf_counter()
    for _ in range(args.repeats):
        predict_probs(model, val.images, 16)
    predict_s = (time.perf_counter() - started) / args.repeats
    started = time.perf_counter()
    for _ in range(args.repeats):
        summarise(val_probs, val.masks.astype("float32"), config.threshold)
    old_s = (time.perf_counter() - started) / args.repeats
    started = time.perf_counter()
    for _ in range(args.repeats):
        summarise_counts(original_counts(val_probs, val.truths, config.threshold))
    new_s = (time.perf_counter() - started) / args.repeats
    epoch_s = sum(row["epoch_s"] for row in result.history) / len(result.history)
    print(f"validation of {len(val)} images: prediction {predict_s:.2f} s; scoring at {args.image_size} px "
          f"{old_s * 1000:.0f} ms, at original resolution {new_s * 1000:.0f} ms "
          f"(+{(new_s - old_s) / epoch_s:.1%} of a {epoch_s:.1f} s epoch)")
    print(f"test Dice new - old: {new['dice'] - old['dice']:+.4f}; validation scoring cost new/old: "
          f"{new_s / max(old_s, 1e-9):.1f}x")


if __name__ == "__main__":
    main()
