"""What Ray Tune and our trial bookkeeping cost per trial, against the training they wrap.

(a) floor: a bare Ray Tune run (OptunaSearch + ASHA, the settings tuning.py uses: fresh process per
    trial, one trial at a time) of trivial function trials that call ``tune.report`` 10 times (no
    TensorFlow). Per-trial wall time = tuner.fit() wall / trials: actor start, searcher and scheduler
    calls, result logging, actor stop. A second run does the same with a 1 KB checkpoint per report
    (our trials checkpoint every epoch).
(b) ours: the real search CLI (``python -m polyp_ray.search --job <tmp job>``) on a small job at the
    notebook's settings (jobs/notebook_replication.yaml's trial and data): U-Net base 64 (61.2 M
    parameters), 128 px, batch 4, the first 300 Kvasir pairs split 70/10/20 (210 training and 30
    validation images), cpu 2, one trial at a time, 2 epochs; two trials, float32 (the notebook's
    precision) and mixed_bfloat16, through ``points_to_evaluate``. From each trial's result.json:
      overhead = time_total_s - sum(train_s)  (everything but the training steps: data from the object
                 store, model build + compile, per epoch validation, checkpoint save + tune.report)
      setup    = epoch 1's (time_this_iter_s - epoch_s) - epoch 2's (time_this_iter_s - epoch_s)
      per epoch = epoch 2's time_this_iter_s - train_s: validation with the checkpoint written meanwhile
                  (epoch_s - train_s), then tune.report, which copies the checkpoint to storage
                  (time_this_iter_s - epoch_s); checkpoint_s is the write alone
    A 10-epoch trial at the notebook's settings (240 training images, batch 4) trains for
    10 x epoch 2's train_s x 240 / 208 (52 batches of 4); its overhead is setup + 10 x per-epoch. Printed as a % of that
    training time, without and with Tune's floor from (a). (train_s is the whole ``fit`` call, so the
    tf.data stall that bench_training.py measures counts as training here, as the issue defines it.)

    python bench/bench_tune_overhead.py [--trials 8] [--limit 300] [--no-floor] [--no-ours]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (  # noqa: E402
    add_common_args,
    emit,
    machine_line,
    run_child,
    run_search_cli,
    use_bench_cache,
)

NOTEBOOK_TRAIN_IMAGES = 240
NOTEBOOK_EPOCHS = 10


def child_floor(args) -> dict:
    """(a): bare Tune, trivial trials; runs in its own process (its own Ray)."""
    import optuna
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = Path(tempfile.mkdtemp(prefix="polyp_ray_bench_floor_"))
    ray.init(include_dashboard=False, num_cpus=2, log_to_driver=False)
    out = {}
    for checkpointing in (False, True):

        def trivial(config, checkpointing=checkpointing):
            for epoch in range(1, args.reports + 1):
                metrics = {"epoch": epoch, "val_dice": config["x"] * epoch / args.reports}
                if checkpointing:
                    with tempfile.TemporaryDirectory() as tmp:
                        (Path(tmp) / "state.json").write_text(json.dumps({"epoch": epoch, "pad": "x" * 1000}))
                        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))
                else:
                    tune.report(metrics)

        searcher = OptunaSearch(metric="val_dice", mode="max", sampler=optuna.samplers.TPESampler(seed=0))
        tuner = tune.Tuner(
            tune.with_resources(trivial, {"cpu": 1}),
            param_space={"x": tune.uniform(0.0, 1.0)},
            tune_config=tune.TuneConfig(
                metric="val_dice", mode="max", num_samples=args.trials, reuse_actors=False,
                search_alg=ConcurrencyLimiter(searcher, max_concurrent=1),
                scheduler=ASHAScheduler(time_attr="epoch", max_t=args.reports, grace_period=args.reports,
                                        reduction_factor=3)),
            run_config=tune.RunConfig(name=f"floor-{int(checkpointing)}", storage_path=str(storage), verbose=0,
                                      checkpoint_config=tune.CheckpointConfig(num_to_keep=2)),
        )
        t0 = time.perf_counter()
        results = tuner.fit()
        wall = time.perf_counter() - t0
        totals = [r.metrics["time_total_s"] for r in results]
        reports = [int(r.metrics["training_iteration"]) for r in results]
        key = "ckpt" if checkpointing else "bare"
        out[key] = {"trials": len(results), "wall_s": wall, "per_trial_s": wall / len(results),
                    "mean_time_total_s": sum(totals) / len(totals), "reports": reports}
    ray.shutdown()
    shutil.rmtree(storage, ignore_errors=True)
    return out


SPACE = "precision: {choices: [float32, mixed_bfloat16]}\n"


def run_ours(args) -> dict:
    """(b): the real CLI on a tiny job; returns per-trial figures read from result.json."""

    work = Path(tempfile.mkdtemp(prefix="polyp_ray_bench_tune_"))
    (work / "space.yaml").write_text(SPACE)
    job = {
        "name": "bench-overhead", "searchspace": "space.yaml", "num_samples": 2, "grace_period": args.epochs,
        "reduction_factor": 3, "max_concurrent": 1,
        "resources": {"cpu": 2, "gpu": 0}, "storage_path": str(work / "experiments"), "seed": 0,
        "keep_checkpoints": 1,
        "points_to_evaluate": [{"precision": "float32"}, {"precision": "mixed_bfloat16"}],
        "data": {"path": args.data, "limit": args.limit, "val_fraction": 0.1, "test_fraction": 0.2, "split_seed": 0},
        "trial": {"epochs": args.epochs, "model": "unet", "base_width": 64, "image_size": 128, "batch_size": 4,
                  "aug_strength": 0.5, "learning_rate": 1e-3, "loss": "bce_dice", "num_predictions": 1},
    }
    stdout, wall, others = run_search_cli(job, work, "run", args.timeout, args.wait_idle)
    found = re.search(r"search finished in (\d+) s", stdout)
    experiment = work / "experiments" / "run"
    trials = []
    for result_file in sorted(experiment.glob("*/result.json")):
        rows = [json.loads(line) for line in result_file.read_text().splitlines() if line.strip()]
        params = json.loads((result_file.parent / "params.json").read_text())
        trials.append(_overhead(rows, params))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return {"trials": trials, "cli_wall_s": wall, "tuner_fit_s": float(found.group(1)) if found else None,
            "others": others, "folder": str(work) if args.keep else None}


def _overhead(rows: list[dict], params: dict) -> dict:
    rows = sorted(rows, key=lambda r: r["epoch"])
    total = rows[-1]["time_total_s"]
    train = sum(r["train_s"] for r in rows)
    last = rows[-1]
    per_epoch = last["time_this_iter_s"] - last["train_s"]
    validation = last["epoch_s"] - last["train_s"]
    setup = (rows[0]["time_this_iter_s"] - rows[0]["epoch_s"]) - (last["time_this_iter_s"] - last["epoch_s"])
    ips = last["train_images_per_s"]
    epoch_train_10 = NOTEBOOK_TRAIN_IMAGES / ips  # = epoch 2's train_s x 240 / the images it trained
    overhead_10 = setup + NOTEBOOK_EPOCHS * per_epoch
    return {"precision": params.get("precision"), "epochs": len(rows), "time_total_s": total, "train_s": train,
            "overhead_s": total - train, "setup_s": setup, "per_epoch_overhead_s": per_epoch,
            "validation_s": validation, "checkpoint_report_s": per_epoch - validation,
            "checkpoint_s": last.get("checkpoint_s"),
            "first_epoch_train_s": rows[0]["train_s"], "images_per_s": ips,
            "notebook_epoch_train_s": epoch_train_10, "overhead_10_s": overhead_10,
            "overhead_10_pct": 100 * overhead_10 / (NOTEBOOK_EPOCHS * epoch_train_10)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(ap)
    ap.add_argument("--trials", type=int, default=8, help="(a) trivial trials (default 8)")
    ap.add_argument("--reports", type=int, default=10, help="(a) tune.report calls per trivial trial")
    ap.add_argument("--limit", type=int, default=300, help="(b) first N Kvasir pairs (70%% train, 10%% val)")
    ap.add_argument("--epochs", type=int, default=2, help="(b) epochs per trial (default 2)")
    ap.add_argument("--timeout", type=float, default=780)
    ap.add_argument("--no-floor", action="store_true")
    ap.add_argument("--no-ours", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep (b)'s experiment folder")
    ap.add_argument("--_child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    use_bench_cache()
    if args._child == "floor":
        emit(child_floor(args))
        return 0

    started = time.perf_counter()
    print(machine_line(), flush=True)
    floor = None
    if not args.no_floor:
        floor = run_child([sys.executable, str(Path(__file__).resolve()), "--_child", "floor", "--trials",
                           str(args.trials), "--reports", str(args.reports)], args.timeout, args.wait_idle,
                          label="floor")
        if floor:
            for key, label in (("bare", "no checkpoint"), ("ckpt", "1 KB checkpoint per report")):
                f = floor[key]
                print(f"(a) bare Tune, {f['trials']} trivial trials x {args.reports} reports ({label}): "
                      f"{f['per_trial_s']:.2f} s per trial (tuner.fit {f['wall_s']:.1f} s; time_total_s "
                      f"{f['mean_time_total_s']:.3f} s); other_processes_cores {floor['other_processes_cores']:.2f}",
                      flush=True)
    ours = None if args.no_ours else run_ours(args)
    if ours:
        for t in ours["trials"]:
            print(f"(b) {t['precision']:15s} time_total_s {t['time_total_s']:.1f}, sum train_s {t['train_s']:.1f} "
                  f"(epoch 1 {t['first_epoch_train_s']:.1f} incl. tracing), overhead {t['overhead_s']:.1f} s = "
                  f"setup {t['setup_s']:.1f} + {t['epochs']} x (validation + checkpoint write {t['validation_s']:.1f} "
                  f"[write alone {t['checkpoint_s']} s] + tune.report {t['checkpoint_report_s']:.1f}); "
                  f"{t['images_per_s']:.2f} train images/s", flush=True)
        print(f"(b) CLI wall {ours['cli_wall_s']:.0f} s (tuner.fit {ours['tuner_fit_s']} s; the rest: Ray start, "
              f"decode, test evaluation of both trials); other_processes_cores {ours['others']:.2f}")

    print(f"\n==== bench_tune_overhead summary ({time.perf_counter() - started:.0f} s) ====")
    print(machine_line())
    floor_s = floor["ckpt"]["per_trial_s"] if floor else 0.0
    if floor:
        print(f"FLOOR bare Ray Tune + Optuna + ASHA: {floor['bare']['per_trial_s']:.2f} s per trial "
              f"({floor['ckpt']['per_trial_s']:.2f} s with a checkpoint per report); "
              f"other_processes_cores {floor['other_processes_cores']:.2f}")
    if ours:
        for t in ours["trials"]:
            ten = NOTEBOOK_EPOCHS * t["notebook_epoch_train_s"]
            with_floor = 100 * (t["overhead_10_s"] + floor_s) / ten
            print(f"OURS {t['precision']}: overhead of the {t['epochs']}-epoch trial {t['overhead_s']:.1f} s "
                  f"(setup {t['setup_s']:.1f} s, {t['per_epoch_overhead_s']:.1f} s per epoch: validation with "
                  f"the checkpoint written meanwhile {t['validation_s']:.1f} + tune.report "
                  f"{t['checkpoint_report_s']:.1f}); a 10-epoch trial "
                  f"at the notebook's settings trains {ten:.0f} s ({t['notebook_epoch_train_s']:.0f} s/epoch) with "
                  f"{t['overhead_10_s']:.0f} s overhead = {t['overhead_10_pct']:.1f}% ({with_floor:.1f}% with "
                  f"Tune's floor); other_processes_cores {ours['others']:.2f}")
        pct = ", ".join(f"{t['precision']} {t['overhead_10_pct']:.1f}%" for t in ours["trials"])
        print(f"RATIO overhead / training time of a 10-epoch notebook-settings trial: {pct} (target < 10%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
