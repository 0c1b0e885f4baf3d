"""Search efficiency of ASHA: the same N configurations, stopped early by ASHA vs all run to the end.

N configurations are drawn with a seeded RNG from a small space (model unet/encoder_decoder, base
width 4/8, learning rate log-uniform 1e-4..1e-2, batch 8/16, aug_strength uniform 0..1) and handed to
two runs of the real search CLI as ``points_to_evaluate`` with ``num_samples = N`` (so both runs
train exactly those configurations, same seeds, same data):

  (a) ASHA: grace_period 1, reduction_factor 3, trial.epochs 27 (rungs at epochs 1, 3 and 9);
  (b) full budget: grace_period = trial.epochs = 27 (ASHA stops nothing).

Data: the first 300 Kvasir-SEG pairs at 64 px (60/20/20 split), 2 trials at a time, 1 CPU each (the
embedded default job's resources). Read from each experiment's polyp_ray/trials.csv: epochs spent
(sum of epochs_run) and the best val_dice. Target: ASHA's best within 0.01 of the full-budget best,
with at most 1/3 of the epochs. About 14 minutes with the defaults on 2 cores (the full budget is
729 epochs); the idle wait before each search is 30 s at most, since the targets count epochs, not
seconds.

    python bench/bench_asha.py [--configs 27] [--epochs 27] [--reduction-factor 3] [--limit 300]
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (  # noqa: E402
    add_common_args,
    machine_line,
    run_search_cli,
    use_bench_cache,
)

SPACE = """\
model: {choices: [unet, encoder_decoder]}
base_width: {choices: [4, 8]}
batch_size: {choices: [8, 16]}
aug_strength: {low: 0.0, high: 1.0}
learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}
"""
KEY = ["model", "base_width", "batch_size", "aug_strength", "learning_rate"]


def sample_configs(n: int, seed: int) -> list[dict]:
    import numpy as np

    rng = np.random.default_rng(seed)
    configs = []
    for _ in range(n):
        configs.append({
            "model": str(rng.choice(["unet", "encoder_decoder"])),
            "base_width": int(rng.choice([4, 8])),
            "batch_size": int(rng.choice([8, 16])),
            "aug_strength": round(float(rng.uniform(0.0, 1.0)), 3),
            "learning_rate": float(f"{math.exp(rng.uniform(math.log(1e-4), math.log(1e-2))):.3g}"),
        })
    return configs


def run_search(name: str, grace: int, configs: list[dict], args, work: Path):
    import pandas as pd

    job = {
        "name": name, "searchspace": "space.yaml", "num_samples": len(configs), "grace_period": grace,
        "reduction_factor": args.reduction_factor, "max_concurrent": args.concurrent,
        "resources": {"cpu": 1, "gpu": 0}, "storage_path": str(work / "experiments"), "seed": args.seed,
        "keep_checkpoints": 1, "points_to_evaluate": configs,
        "data": {"path": args.data, "limit": args.limit, "val_fraction": 0.2, "test_fraction": 0.2, "split_seed": 0},
        "trial": {"epochs": args.epochs, "image_size": args.image_size, "precision": "float32", "loss": "bce_dice",
                  "num_predictions": 1},
    }
    _stdout, wall, others = run_search_cli(job, work, name, args.timeout, args.wait_idle)
    table = pd.read_csv(work / "experiments" / name / "polyp_ray" / "trials.csv")
    return table, wall, others


def _key(row) -> tuple:
    return (row["model"], int(row["base_width"]), int(row["batch_size"]), round(float(row["aug_strength"]), 3),
            float(f"{float(row['learning_rate']):.3g}"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(ap)
    ap.set_defaults(wait_idle=30)
    ap.add_argument("--configs", type=int, default=27, help="N configurations (default 27)")
    ap.add_argument("--epochs", type=int, default=27, help="every trial's budget, trial.epochs (default 27)")
    ap.add_argument("--reduction-factor", type=int, default=3)
    ap.add_argument("--limit", type=int, default=300, help="first N Kvasir pairs (default 300)")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--concurrent", type=int, default=2, help="trials at a time (1 CPU each)")
    ap.add_argument("--seed", type=int, default=0, help="RNG seed of the configurations (and the job seed)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per search")
    ap.add_argument("--keep", action="store_true", help="keep the two experiment folders")
    args = ap.parse_args(argv)
    use_bench_cache()

    started = time.perf_counter()
    print(machine_line(), flush=True)
    configs = sample_configs(args.configs, args.seed)
    work = Path(tempfile.mkdtemp(prefix="polyp_ray_bench_asha_"))
    (work / "space.yaml").write_text(SPACE)
    print(f"{len(configs)} configurations (seed {args.seed}); Kvasir first {args.limit} pairs at {args.image_size} px; "
          f"epochs {args.epochs}; {args.concurrent} trials at a time", flush=True)
    runs = {}
    for name, grace in (("asha", 1), ("full", args.epochs)):
        table, wall, others = run_search(name, grace, configs, args, work)
        runs[name] = {"table": table, "wall": wall, "others": others}
        print(f"  {name}: {len(table)} trials, {int(table['epochs_run'].sum())} epochs, best val_dice "
              f"{table['best_val_dice'].max():.4f}, {wall:.0f} s wall; other_processes_cores {others:.2f}", flush=True)

    asha, full = runs["asha"]["table"], runs["full"]["table"]
    by_key = {name: {_key(r): r for _, r in t.iterrows()} for name, t in (("asha", asha), ("full", full))}
    print(f"\n{'model':16s} {'bw':>3s} {'batch':>5s} {'aug':>6s} {'lr':>8s} | {'full: ep':>8s} {'best':>7s} | "
          f"{'asha: ep':>8s} {'best':>7s}")
    for c in configs:
        k = _key(c)
        f, a = by_key["full"].get(k), by_key["asha"].get(k)
        fe, fb = (int(f["epochs_run"]), f["best_val_dice"]) if f is not None else (0, float("nan"))
        ae, ab = (int(a["epochs_run"]), a["best_val_dice"]) if a is not None else (0, float("nan"))
        print(f"{c['model']:16s} {c['base_width']:3d} {c['batch_size']:5d} {c['aug_strength']:6.3f} "
              f"{c['learning_rate']:8.2g} | {fe:8d} {fb:7.4f} | {ae:8d} {ab:7.4f}")
    missing = [k for k in map(_key, configs) if k not in by_key["asha"] or k not in by_key["full"]]
    if missing:
        print(f"warning: {len(missing)} configurations not matched between the runs: {missing}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"experiments kept in {work / 'experiments'}")

    ep_a, ep_f = int(asha["epochs_run"].sum()), int(full["epochs_run"].sum())
    best_a, best_f = float(asha["best_val_dice"].max()), float(full["best_val_dice"].max())
    print(f"\n==== bench_asha summary ({time.perf_counter() - started:.0f} s) ====")
    print(machine_line())
    print(f"ASHA (grace 1, rf {args.reduction_factor}): {ep_a} epochs, best val_dice {best_a:.4f}, "
          f"{runs['asha']['wall']:.0f} s wall, other_processes_cores {runs['asha']['others']:.2f}")
    print(f"full budget ({args.epochs} epochs each): {ep_f} epochs, best val_dice {best_f:.4f}, "
          f"{runs['full']['wall']:.0f} s wall, other_processes_cores {runs['full']['others']:.2f}")
    print(f"RATIO epochs ASHA/full {ep_a / ep_f:.3f} (target <= 0.333); best val_dice difference full - ASHA "
          f"{best_f - best_a:+.4f} (target <= 0.01); wall time ratio {runs['asha']['wall'] / runs['full']['wall']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
