"""Training throughput of the FAITHFUL notebook U-Net (bench/notebook_baseline.py), and variants.

The baseline is the notebook as ported: NotebookUNet (61.2 M parameters), 128 px, batch 4, float32,
the notebook's uncached tf.data pipeline, ``model.fit``.  The variants change one or a few things
(mixed_bfloat16, steps_per_execution, TF thread pools, a cached in-memory uint8 pipeline, larger
batches, XLA) to see what pays on this CPU for polyp_ray's trainer.  Each variant runs in a fresh
subprocess (thread pools and the dtype policy are process-wide): ``fit`` for 2 epochs, the first a
warm-up (tracing, oneDNN primitive creation), the second timed: images/s = images / wall time of
epoch 2, input pipeline included.

Also measures a 4096^3 matmul in bfloat16 and float32 (GFLOP/s, the CPU's practical peak), the U-Net's
FLOPs per training image (analytic forward x 3, cross-checked with TF's graph profiler), and each
variant's fraction of the bf16 matmul peak.

    python bench/bench_training_baseline.py                        # the default variant set
    python bench/bench_training_baseline.py --variants fp32 bf16   # a subset
    python bench/bench_training_baseline.py --list                 # list the variants
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench._machine import OthersMeter, wait_idle  # noqa: E402


@dataclass(frozen=True)
class Variant:
    name: str
    precision: str = "float32"  # or "mixed_bfloat16"
    batch: int = 4
    spe: int = 1  # steps_per_execution
    threads: tuple[int, int] | None = None  # (inter_op, intra_op); None = TF defaults
    pipeline: str = "notebook"  # "notebook" (decode every epoch) or "cached" (uint8 in memory)
    jit: bool = False  # jit_compile=True (XLA)
    doc: str = ""


VARIANTS = [
    Variant("fp32", doc="the notebook: float32, batch 4, uncached pipeline"),
    Variant("bf16", "mixed_bfloat16", doc="+ mixed_bfloat16 (sigmoid head float32)"),
    Variant("bf16_spe4", "mixed_bfloat16", spe=4, doc="+ steps_per_execution=4"),
    Variant("bf16_spe16", "mixed_bfloat16", spe=16, doc="+ steps_per_execution=16"),
    Variant("bf16_thr22", "mixed_bfloat16", threads=(2, 2), doc="+ inter_op=2, intra_op=2"),
    Variant("bf16_thr12", "mixed_bfloat16", threads=(1, 2), doc="+ inter_op=1, intra_op=2"),
    Variant("bf16_cached", "mixed_bfloat16", pipeline="cached", doc="+ cached uint8 pipeline, prefetch"),
    Variant("bf16_cached_b8", "mixed_bfloat16", batch=8, pipeline="cached", doc="+ cached, batch 8"),
    Variant("bf16_cached_b16", "mixed_bfloat16", batch=16, pipeline="cached", doc="+ cached, batch 16"),
    Variant(
        "bf16_cached_b8_spe8",
        "mixed_bfloat16",
        batch=8,
        spe=8,
        pipeline="cached",
        doc="+ cached, batch 8, steps_per_execution=8",
    ),
    Variant(
        "bf16_cached_b16_spe4",
        "mixed_bfloat16",
        batch=16,
        spe=4,
        pipeline="cached",
        doc="+ cached, batch 16, steps_per_execution=4",
    ),
    Variant("fp32_cached_b8", batch=8, pipeline="cached", doc="float32, cached, batch 8 (reference)"),
    Variant("bf16_xla", "mixed_bfloat16", jit=True, doc="+ jit_compile=True (XLA on CPU)"),
]
BY_NAME = {v.name: v for v in VARIANTS}
# the default run stays well under 10 minutes on the 2-core machine; the others run by name
OPTIONAL = ("bf16_spe4", "bf16_thr12", "bf16_cached_b16_spe4", "fp32_cached_b8", "bf16_xla")
DEFAULT_SET = [v.name for v in VARIANTS if v.name not in OPTIONAL]
TRAIN_FLOPS_NOMINAL = 118e9  # the spec's figure per training image at 128 px


# ----------------------------------------------------------------------------------------------
# one variant, in a fresh process
# ----------------------------------------------------------------------------------------------


def _cached_dataset(x, y, image_size, batch_size):
    """Decode + resize once into uint8 arrays in memory; per epoch only the notebook's augmentation
    (flip, +-5% nearest translate) runs, then float /255; shuffled, repeated, prefetched."""
    import numpy as np
    import tensorflow as tf

    from bench.notebook_baseline import flip_img, shift_img

    def load(fname, label_path):
        img = tf.io.decode_jpeg(tf.io.read_file(fname), channels=3)
        lab = tf.image.rgb_to_grayscale(tf.io.decode_jpeg(tf.io.read_file(label_path), channels=3))
        img = tf.image.resize(img, [image_size, image_size])
        lab = tf.image.resize(lab, [image_size, image_size])
        return tf.cast(tf.round(img), tf.uint8), tf.cast(tf.round(lab), tf.uint8)

    arrays = list(tf.data.Dataset.from_tensor_slices((x, y)).map(load, 2).batch(len(x)).as_numpy_iterator())
    xs, ys = arrays[0]
    assert xs.dtype == np.uint8 and xs.shape == (len(x), image_size, image_size, 3)
    img_shape = (image_size, image_size, 3)

    def aug(img, lab):
        img, lab = flip_img(True, img, lab)
        img = tf.cast(img, tf.float32) * (1 / 255.0)
        lab = tf.cast(lab, tf.float32) * (1 / 255.0)
        return shift_img(img, lab, 0.05, 0.05, img_shape)

    ds = tf.data.Dataset.from_tensor_slices((xs, ys)).shuffle(len(x)).repeat()
    ds = ds.map(aug, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size, drop_remainder=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def run_variant(v: Variant, args) -> dict:
    import tensorflow as tf

    if v.threads is not None:
        tf.config.threading.set_inter_op_parallelism_threads(v.threads[0])
        tf.config.threading.set_intra_op_parallelism_threads(v.threads[1])
    import keras

    from bench.notebook_baseline import (
        build_notebook_unet,
        compile_notebook_unet,
        list_kvasir_pairs,
        notebook_lr_callback,
        notebook_pipeline,
    )

    keras.mixed_precision.set_global_policy(v.precision)
    x, y = list_kvasir_pairs(args.data, args.images)
    t_data = time.perf_counter()
    if v.pipeline == "cached":
        ds = _cached_dataset(x, y, args.image_size, v.batch)
    else:
        ds = notebook_pipeline(x, y, image_size=args.image_size, batch_size=v.batch).repeat()
    t_data = time.perf_counter() - t_data

    model = build_notebook_unet(args.image_size, v.batch)
    compile_notebook_unet(model, steps_per_execution=v.spe, jit_compile=True if v.jit else "auto")

    # steps: whole executions; warm-up >= args.warmup_steps, timed >= args.measure_images images
    warm = max(v.spe, math.ceil(args.warmup_steps / v.spe) * v.spe)
    timed = max(v.spe, math.ceil(math.ceil(args.measure_images / v.batch) / v.spe) * v.spe)

    class Timer(keras.callbacks.Callback):
        """Wall-clock stamp at the end of every execution (every `spe` steps)."""

        def __init__(self):
            super().__init__()
            self.stamps = []

            self.cpu = []

        def on_train_begin(self, logs=None):
            self.stamps.append(time.perf_counter())
            self.cpu.append(time.process_time())

        def on_train_batch_end(self, batch, logs=None):
            self.stamps.append(time.perf_counter())
            self.cpu.append(time.process_time())

    timer = Timer()
    # One fit over warm + timed steps on the repeated dataset; the timed window runs from the end of
    # the last warm-up execution to the end of the last execution (input pipeline included).
    model.fit(ds, epochs=1, steps_per_epoch=warm + timed, callbacks=[notebook_lr_callback(10, 0), timer], verbose=0)
    n_warm_exec = warm // v.spe
    stamps = timer.stamps
    assert len(stamps) == 1 + (warm + timed) // v.spe, (len(stamps), warm, timed, v.spe)
    warm_s = stamps[n_warm_exec] - stamps[0]
    dt = stamps[-1] - stamps[n_warm_exec]
    per_exec = sorted(b - a for a, b in zip(stamps[n_warm_exec:-1], stamps[n_warm_exec + 1 :], strict=True))
    median_step = per_exec[len(per_exec) // 2] / v.spe
    own_cores = (timer.cpu[-1] - timer.cpu[n_warm_exec]) / dt
    return {
        **asdict(v),
        "images": len(x),
        "image_size": args.image_size,
        "data_setup_s": round(t_data, 2),
        "warmup_steps": warm,
        "warmup_s": round(warm_s, 2),
        "timed_steps": timed,
        "timed_s": round(dt, 2),
        "images_per_s": timed * v.batch / dt,
        "median_step_s": median_step,
        "median_images_per_s": v.batch / median_step,
        "own_cores_timed": round(own_cores, 2),
        "threads_effective": [
            tf.config.threading.get_inter_op_parallelism_threads(),
            tf.config.threading.get_intra_op_parallelism_threads(),
        ],
    }


# ----------------------------------------------------------------------------------------------
# matmul peak and FLOPs
# ----------------------------------------------------------------------------------------------


def run_peak(args) -> dict:
    import tensorflow as tf

    from bench.notebook_baseline import UNet, unet_forward_flops

    out = {}
    n = args.matmul_n
    for dtype in (tf.bfloat16, tf.float32):
        a = tf.random.normal([n, n], dtype=tf.float32)
        b = tf.random.normal([n, n], dtype=tf.float32)
        a, b = tf.cast(a, dtype), tf.cast(b, dtype)
        reps = args.matmul_reps

        @tf.function
        def loop(a, b, reps=reps):
            acc = tf.zeros([], tf.float32)
            for _ in tf.range(reps):
                c = tf.matmul(a, b)
                acc += tf.cast(c[0, 0], tf.float32)
            return acc

        loop(a, b).numpy()  # trace + warm
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            loop(a, b).numpy()
            best = min(best, time.perf_counter() - t0)
        out[f"matmul_{dtype.name}_gflops"] = 2 * n**3 * reps / best / 1e9

    analytic = unet_forward_flops(args.image_size)
    out["forward_flops_analytic"] = analytic
    # cross-check with TF's graph profiler on the forward pass at batch 1 (float32 policy here)
    try:
        from tensorflow.python.framework.convert_to_constants import (
            convert_variables_to_constants_v2,
        )

        model = UNet()
        spec = tf.TensorSpec([1, args.image_size, args.image_size, 3], tf.float32)
        fn = tf.function(lambda t: model(t, training=False)).get_concrete_function(spec)
        frozen = convert_variables_to_constants_v2(fn)
        opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
        opts["output"] = "none"
        prof = tf.compat.v1.profiler.profile(
            graph=frozen.graph, run_meta=tf.compat.v1.RunMetadata(), cmd="op", options=opts
        )
        out["forward_flops_profiler"] = int(prof.total_float_ops)
    except Exception as e:  # the v1 profiler is best-effort
        out["forward_flops_profiler"] = None
        out["profiler_error"] = f"{type(e).__name__}: {e}"[:200]
    return out


# ----------------------------------------------------------------------------------------------
# driver
# ----------------------------------------------------------------------------------------------


def _child(kind: str, args) -> dict | None:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--_child",
        kind,
        "--data",
        args.data,
        "--images",
        str(args.images),
        "--image-size",
        str(args.image_size),
        "--warmup-steps",
        str(args.warmup_steps),
        "--measure-images",
        str(args.measure_images),
        "--matmul-n",
        str(args.matmul_n),
        "--matmul-reps",
        str(args.matmul_reps),
    ]
    wait_idle(args.wait_idle)
    meter = OthersMeter()
    meter.start()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.variant_timeout)
    except subprocess.TimeoutExpired:
        print(f"  {kind}: timed out after {args.variant_timeout} s", flush=True)
        return None
    others = meter.stop()
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            res = json.loads(line[7:])
            res["other_processes_cores"] = round(others, 2)
            return res
    print(f"  {kind}: failed (rc {proc.returncode})\n{proc.stderr[-2000:]}", flush=True)
    return None


def main(argv=None) -> int:
    from bench.notebook_baseline import default_kvasir_dir

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data",
        default=str(default_kvasir_dir()),
        help="Kvasir-SEG folder (default $POLYP_RAY_KVASIR or ../shared/data/Kvasir-SEG)",
    )
    ap.add_argument("--images", type=int, default=240, help="first N pairs to train on (default 240)")
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--warmup-steps", type=int, default=4, help="untimed steps (rounded up to whole executions)")
    ap.add_argument(
        "--measure-images",
        type=int,
        default=64,
        help="timed images per variant (rounded up to whole executions; default 64)",
    )
    ap.add_argument("--variants", nargs="+", default=DEFAULT_SET, help=f"default: {' '.join(DEFAULT_SET)}")
    ap.add_argument("--list", action="store_true", help="list the variants and exit")
    ap.add_argument("--no-peak", action="store_true", help="skip the matmul / FLOPs measurement")
    ap.add_argument("--matmul-n", type=int, default=4096)
    ap.add_argument("--matmul-reps", type=int, default=8)
    ap.add_argument("--variant-timeout", type=int, default=300, help="seconds per variant subprocess")
    ap.add_argument(
        "--wait-idle",
        type=float,
        default=120,
        help="before each run wait up to this many seconds for other processes to go idle",
    )
    ap.add_argument("--json", help="also write all results to this JSON file")
    ap.add_argument("--_child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args._child:
        res = run_peak(args) if args._child == "peak" else run_variant(BY_NAME[args._child], args)
        print("RESULT " + json.dumps(res), flush=True)
        return 0
    if args.list:
        for v in VARIANTS:
            print(f"{v.name:22s} {v.doc}{'' if v.name in DEFAULT_SET else '  (not in the default set)'}")
        return 0
    unknown = [n for n in args.variants if n not in BY_NAME]
    if unknown:
        ap.error(f"unknown variants {unknown}; see --list")

    started = time.perf_counter()
    peak = None
    if not args.no_peak:
        peak = _child("peak", args)
        if peak:
            prof = peak.get("forward_flops_profiler")
            print(
                f"matmul {args.matmul_n}^3: bf16 {peak['matmul_bfloat16_gflops']:.0f} GFLOP/s, "
                f"fp32 {peak['matmul_float32_gflops']:.0f} GFLOP/s"
            )
            print(
                f"U-Net forward at {args.image_size} px: {peak['forward_flops_analytic'] / 1e9:.1f} GFLOP "
                f"analytic (convs), {prof / 1e9 if prof else float('nan'):.1f} GFLOP by TF's profiler; "
                f"training ~3x = {3 * peak['forward_flops_analytic'] / 1e9:.0f} GFLOP/image",
                flush=True,
            )
    train_flops = 3 * peak["forward_flops_analytic"] if peak else TRAIN_FLOPS_NOMINAL
    bf16_peak = peak["matmul_bfloat16_gflops"] * 1e9 if peak else None

    print(
        f"\ntraining throughput, NotebookUNet, {args.image_size} px, {args.images} Kvasir-SEG pairs, "
        f"timed epoch after warm-up (input pipeline included)"
    )
    print(
        f"{'variant':22s} {'img/s':>7s} {'median':>7s} {'vs fp32':>7s} {'GFLOP/s':>8s} {'%bf16pk':>7s}  "
        f"{'warm-up':>8s} {'cores':>5s} {'other':>5s}  description"
    )
    results = []
    base = None
    for name in args.variants:
        r = _child(name, args)
        if r is None:
            continue
        results.append(r)
        ips = r["images_per_s"]
        if name == "fp32":
            base = ips
        gflops = ips * train_flops / 1e9
        pk = f"{100 * gflops * 1e9 / bf16_peak:6.1f}%" if bf16_peak else "    n/a"
        rel = f"{ips / base:6.2f}x" if base else "    n/a"
        print(
            f"{name:22s} {ips:7.2f} {r['median_images_per_s']:7.2f} {rel} {gflops:8.0f} {pk}  "
            f"{r['warmup_s']:7.1f}s {r['own_cores_timed']:5.2f} {r['other_processes_cores']:5.2f}  "
            f"{BY_NAME[name].doc} [{r['timed_steps']} steps x {r['batch']}]",
            flush=True,
        )
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"peak": peak, "variants": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
