"""Training throughput at the notebook's settings, polyp_ray's trainer vs the notebook's, side by side.

Same architecture (the notebook's U-Net, base 64, 61,240,193 parameters), 128x128, Kvasir-SEG, same
machine, one run; every measurement in its own fresh process (thread pools and the precision policy
are process-wide), each after an idle wait, with the cores other processes used beside it.

  * peak: a 4096^3 matmul in bfloat16 and float32 (GFLOP/s) and the U-Net's FLOPs per training image
    (analytic forward x 3), by bench/bench_training_baseline.py's ``peak`` child;
  * notebook: the FAITHFUL port (bench/notebook_baseline.py: subclassed U-Net, float32, batch 4, the
    uncached decode-every-epoch pipeline, ``model.fit``), by bench/bench_training_baseline.py's
    ``fp32`` child: warm-up steps, then images/s over the timed steps (input pipeline included);
  * ours: literally ``polyp_ray.trial.run_trial(TrialConfig(...))``: our functional U-Net
    (``build_model("unet", 128, 64)``), the cached pipeline, Adam + cosine decay, ``fit`` per epoch,
    validation and a checkpoint each epoch; ``epochs`` 2 (the first is warm-up: tracing, oneDNN
    primitives), ``evaluate_test`` False, the first ``--limit`` Kvasir pairs (70% train). The figure is
    epoch 2's ``train_images_per_s`` as run_trial reports it (its fit call; validation and checkpoint are
    outside).
  * variants of ours (``--variants``; ``--list``), each changing one thing inside the child:
    Keras's own unfused BatchNormalization instead of our fused one (``kerasbn``: polyp_ray before
    its ``FusedBatchNormalization``, patched into ``polyp_ray.models.blocks.batch_norm``); tf.data
    autotuning back on (``autotune``: polyp_ray before commit 2c1e053, which turned it off
    after this benchmark showed ``fit``/``predict`` blocking 0.5-13 s with the CPU idle when they drop
    an autotuned iterator); batch 16; float32; oneDNN off (``TF_ENABLE_ONEDNN_OPTS=0``); float32 with
    oneDNN's implicit bf16 (``ONEDNN_DEFAULT_FPMATH_MODE=BF16``); XLA (``jit_compile=True``).
  For ours, "steps alone" = images / (last batch end - on_train_begin) of the timed epoch, and "fit
  spent outside its steps" = train_s minus that, per epoch: what such stalls cost.
  The matmul peak is measured before and after the variants (this host's speed drifts by ~10%);
  the higher one is the reference.

    python bench/bench_training.py                      # the default set (~8 min on 2 cores)
    python bench/bench_training.py --variants notebook ours_b4 ours_b4_kerasbn
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import REPO_ROOT, add_common_args, emit, machine_line, run_child, use_bench_cache  # noqa: E402

BASELINE = REPO_ROOT / "bench" / "bench_training_baseline.py"
TRAIN_FLOPS_NOMINAL = 118e9


@dataclass(frozen=True)
class Ours:
    name: str
    batch: int = 4
    precision: str = "mixed_bfloat16"
    autotune: bool = False  # tf.data autotuning back on, as polyp_ray had it before commit 2c1e053
    keras_bn: bool = False  # Keras's unfused BatchNormalization, as polyp_ray had it before its fused layer
    jit: bool = False
    env: dict = field(default_factory=dict)
    doc: str = ""


OURS = [
    Ours("ours_b4", doc="run_trial as is: mixed_bfloat16, batch 4 (the notebook's batch)"),
    Ours("ours_b16", batch=16, doc="run_trial as is: mixed_bfloat16, batch 16"),
    Ours("ours_b4_kerasbn", keras_bn=True, doc="Keras's unfused BatchNorm (polyp_ray before its fused one), batch 4"),
    Ours("ours_b16_kerasbn", batch=16, keras_bn=True,
         doc="Keras's unfused BatchNorm (polyp_ray before its fused one), batch 16"),
    Ours("ours_b16_autotune", batch=16, autotune=True,
         doc="tf.data autotuning on (polyp_ray before 2c1e053), batch 16"),
    Ours("ours_b4_autotune", autotune=True, doc="tf.data autotuning on (polyp_ray before 2c1e053), batch 4"),
    Ours("ours_b4_fp32", precision="float32", doc="run_trial as is: float32, batch 4 (precision alone)"),
    Ours("ours_b4_noonednn", env={"TF_ENABLE_ONEDNN_OPTS": "0"}, doc="TF_ENABLE_ONEDNN_OPTS=0, batch 4"),
    Ours("ours_b4_fp32_fpmath_bf16", precision="float32", env={"ONEDNN_DEFAULT_FPMATH_MODE": "BF16"},
         doc="float32 + ONEDNN_DEFAULT_FPMATH_MODE=BF16 (oneDNN's implicit bf16), batch 4"),
    Ours("ours_b4_xla", jit=True, doc="+ jit_compile=True (XLA), batch 4"),
]
BY_NAME = {v.name: v for v in OURS}
ALL = ["notebook", *BY_NAME]
DEFAULT_SET = ["notebook", "ours_b4", "ours_b16", "ours_b4_kerasbn", "ours_b16_autotune"]


# ----------------------------------------------------------------------------------------------
# children
# ----------------------------------------------------------------------------------------------


def _stamp_batches() -> list[list[float]]:
    """Per ``fit`` call of run_trial: the time of on_train_begin and of every batch end (the trial's
    TerminateOnNaN callback, subclassed; the behaviour is unchanged)."""
    import keras

    stamps: list[list[float]] = []

    class StampingTerminateOnNaN(keras.callbacks.TerminateOnNaN):
        def on_train_begin(self, logs=None):
            stamps.append([time.perf_counter()])

        def on_train_batch_end(self, batch, logs=None):
            super().on_train_batch_end(batch, logs)
            stamps[-1].append(time.perf_counter())

    keras.callbacks.TerminateOnNaN = StampingTerminateOnNaN
    return stamps


class RecordingReporter:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def restore(self):
        return None

    def report(self, metrics, checkpoint_dir) -> None:
        self.rows.append(dict(metrics))


def child_ours(v: Ours, args) -> dict:
    use_bench_cache()
    import polyp_ray.models.blocks as blocks
    import polyp_ray.trial as trial
    from polyp_ray.config import DataConfig, TrialConfig

    if v.autotune:
        import polyp_ray.data.pipeline as pipeline

        pipeline._untuned = lambda data: data  # what the pipelines returned before commit 2c1e053
    stamps = _stamp_batches()
    if v.keras_bn:
        import keras

        blocks.batch_norm = lambda name: keras.layers.BatchNormalization(momentum=blocks.BN_MOMENTUM, name=name)
    if v.jit:
        original = trial._compile

        def compile_with_xla(model, config, steps, resume_step=0):
            original(model, config, steps, resume_step)
            model.jit_compile = True

        trial._compile = compile_with_xla
    config = TrialConfig(model="unet", base_width=64, image_size=128, batch_size=v.batch, aug_strength=0.5,
                         learning_rate=1e-3, loss="bce_dice", epochs=args.epochs, precision=v.precision,
                         evaluate_test=False, data=DataConfig(path=args.data, limit=args.limit))
    reporter = RecordingReporter()
    t0 = time.perf_counter()
    result = trial.run_trial(config, reporter)
    wall = time.perf_counter() - t0
    rows = reporter.rows
    last = rows[-1]
    steps_s = stamps[-1][-1] - stamps[-1][0]  # last fit: on_train_begin to the end of its last batch
    return {"name": v.name, "batch": v.batch, "precision": v.precision, "n_params": result.n_params,
            "train_images": int(round(last["train_images_per_s"] * last["train_s"])),
            "images_per_s": last["train_images_per_s"], "epoch_train_s": [r["train_s"] for r in rows],
            "epoch_s": [r["epoch_s"] for r in rows], "val_dice": [r["val_dice"] for r in rows],
            "loss": [r["loss"] for r in rows], "trial_wall_s": wall, "steps_s": steps_s,
            "steps_images_per_s": (len(stamps[-1]) - 1) * v.batch / steps_s,
            "fit_outside_steps_s": [r["train_s"] - (t[-1] - t[0]) for r, t in zip(rows, stamps, strict=False)]}


# ----------------------------------------------------------------------------------------------
# driver
# ----------------------------------------------------------------------------------------------


def _baseline_cmd(kind: str, args) -> list[str]:
    return [sys.executable, str(BASELINE), "--_child", kind, "--data", args.data, "--images", str(args.nb_images),
            "--image-size", "128", "--warmup-steps", str(args.nb_warmup_steps), "--measure-images",
            str(args.nb_measure_images), "--matmul-n", "4096", "--matmul-reps", "8"]


def _measure(name: str, args) -> dict | None:
    """One child, retried (up to --retries) while other processes used > --max-others cores."""
    best = None
    for attempt in range(1 + args.retries):
        if name in ("peak", "notebook"):
            cmd, env = _baseline_cmd("peak" if name == "peak" else "fp32", args), None
        else:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--_child", name, "--data", args.data,
                   "--limit", str(args.limit), "--epochs", str(args.epochs)]
            env = BY_NAME[name].env
        res = run_child(cmd, args.child_timeout, args.wait_idle, env=env, label=name)
        if res is None:
            return best
        if best is None or res["other_processes_cores"] < best["other_processes_cores"]:
            best = res
        if res["other_processes_cores"] <= args.max_others:
            break
        print(f"  {name}: other processes used {res['other_processes_cores']:.2f} cores; retrying "
              f"({attempt + 1}/{args.retries})", flush=True)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(ap)
    ap.add_argument("--variants", nargs="+", default=DEFAULT_SET, help=f"default: {' '.join(DEFAULT_SET)}")
    ap.add_argument("--list", action="store_true", help="list the variants and exit")
    ap.add_argument("--limit", type=int, default=200, help="ours: first N Kvasir pairs (70%% train; default 200)")
    ap.add_argument("--epochs", type=int, default=2, help="ours: epochs; the last one is timed (default 2)")
    ap.add_argument("--nb-images", type=int, default=240, help="notebook: first N pairs (default 240)")
    ap.add_argument("--nb-warmup-steps", type=int, default=4)
    ap.add_argument("--nb-measure-images", type=int, default=96, help="notebook: timed images (default 96)")
    ap.add_argument("--no-peak", action="store_true")
    ap.add_argument("--retries", type=int, default=1, help="rerun a child once if others were busy (default 1)")
    ap.add_argument("--max-others", type=float, default=0.3, help="cores others may use before a retry")
    ap.add_argument("--child-timeout", type=float, default=400)
    ap.add_argument("--json", help="also write every result to this JSON file")
    ap.add_argument("--_child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args._child:
        emit(child_ours(BY_NAME[args._child], args))
        return 0
    if args.list:
        print(f"{'notebook':22s} FAITHFUL notebook port: float32, batch 4, uncached pipeline")
        for v in OURS:
            print(f"{v.name:22s} {v.doc}{'' if v.name in DEFAULT_SET else '  (not in the default set)'}")
        return 0
    unknown = [n for n in args.variants if n not in ALL]
    if unknown:
        ap.error(f"unknown variants {unknown}; see --list")

    started = time.perf_counter()
    print(machine_line(), flush=True)
    peak = None if args.no_peak else _measure("peak", args)
    if peak:
        print(f"matmul 4096^3: bf16 {peak['matmul_bfloat16_gflops']:.0f} GFLOP/s, fp32 "
              f"{peak['matmul_float32_gflops']:.0f} GFLOP/s; U-Net training FLOPs per 128 px image "
              f"{3 * peak['forward_flops_analytic'] / 1e9:.0f} G (analytic forward x 3); "
              f"other_processes_cores {peak['other_processes_cores']:.2f}", flush=True)
    train_flops = 3 * peak["forward_flops_analytic"] if peak else TRAIN_FLOPS_NOMINAL

    results: dict[str, dict] = {}
    for name in args.variants:
        res = _measure(name, args)
        if res is None:
            continue
        results[name] = res
        if name == "notebook":
            print(f"  notebook   {res['images_per_s']:6.2f} images/s ({res['timed_steps']} timed steps x "
                  f"{res['batch']} after {res['warmup_steps']} warm-up; other_processes_cores "
                  f"{res['other_processes_cores']:.2f})", flush=True)
        else:
            print(f"  {name:22s} {res['images_per_s']:6.2f} images/s (epoch {len(res['epoch_train_s'])} of "
                  f"run_trial, {res['train_images']} images; epoch train s "
                  f"{', '.join(f'{s:.1f}' for s in res['epoch_train_s'])}; val_dice "
                  f"{', '.join(f'{d:.3f}' for d in res['val_dice'])}; steps alone {res['steps_images_per_s']:.2f} "
                  f"images/s; fit spent outside its steps "
                  f"{', '.join(f'{d:.1f}' for d in res['fit_outside_steps_s'])} s; other_processes_cores "
                  f"{res['other_processes_cores']:.2f})", flush=True)
    peak_after = None if args.no_peak else _measure("peak", args)
    peaks = [p for p in (peak, peak_after) if p]
    if peak_after:
        print(f"matmul 4096^3 again: bf16 {peak_after['matmul_bfloat16_gflops']:.0f} GFLOP/s, fp32 "
              f"{peak_after['matmul_float32_gflops']:.0f} GFLOP/s; other_processes_cores "
              f"{peak_after['other_processes_cores']:.2f}", flush=True)
    bf16_peak = max(p["matmul_bfloat16_gflops"] for p in peaks) * 1e9 if peaks else None
    if args.json:
        Path(args.json).write_text(json.dumps({"peaks": peaks, "results": results}, indent=1))

    print(f"\n==== bench_training summary ({time.perf_counter() - started:.0f} s) ====")
    print(machine_line())
    base = results.get("notebook", {}).get("images_per_s")
    print(f"{'variant':24s} {'img/s':>7s} {'vs nb':>6s} {'GFLOP/s':>8s} {'%bf16pk':>7s} {'others':>6s}  description")
    for name, res in results.items():
        ips = res["images_per_s"]
        gflops = ips * train_flops / 1e9
        pct = f"{100 * gflops * 1e9 / bf16_peak:6.1f}%" if bf16_peak else "   n/a"
        rel = f"{ips / base:5.2f}x" if base else "   n/a"
        doc = "FAITHFUL notebook port: float32, batch 4, uncached pipeline" if name == "notebook" else BY_NAME[name].doc
        print(f"{name:24s} {ips:7.2f} {rel} {gflops:8.0f} {pct}  {res['other_processes_cores']:5.2f}  {doc}")
    if peaks:
        print(f"bf16 matmul peak {bf16_peak / 1e9:.0f} GFLOP/s (best of "
              f"{', '.join(str(round(p['matmul_bfloat16_gflops'])) for p in peaks)}), fp32 "
              f"{max(p['matmul_float32_gflops'] for p in peaks):.0f} GFLOP/s; "
              f"{train_flops / 1e9:.0f} GFLOP per training image")
    if base and "ours_b4" in results:
        line = f"RATIO ours/notebook training images/s: batch 4 {results['ours_b4']['images_per_s'] / base:.2f}x"
        if "ours_b16" in results:
            line += f", batch 16 {results['ours_b16']['images_per_s'] / base:.2f}x"
        print(line + " (target >= 2.5x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
