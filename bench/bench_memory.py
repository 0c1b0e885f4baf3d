"""Memory: peak RSS of one trial at the notebook's settings, and the size of the decoded-array cache.

(a) ``polyp_ray.trial.run_trial`` in a fresh child process at the notebook's settings (U-Net base 64,
    128 px, batch 4, float32, Adam, the first 300 Kvasir pairs split 70/10/20 as
    jobs/notebook_replication.yaml, ``--epochs`` epochs with validation and a checkpoint each,
    ``evaluate_test`` False as under Tune). Peak RSS = the child's ``ru_maxrss`` seen by the parent
    (``getrusage(RUSAGE_CHILDREN)``), cross-checked with the child's own /proc/self/status VmHWM; the
    child also reports its RSS after importing TensorFlow. ``--notebook`` (on by default) does the same
    for the FAITHFUL notebook port (bench/notebook_baseline.py: ``notebook_fit`` on its uncached
    pipeline over the same 300 pairs: 240 train / 60 validation, one epoch), for comparison.
(b) ``prepare_data`` for all 1000 Kvasir-SEG pairs at 256 px (and 128 px) into a fresh cache folder:
    bytes of the .npy files it writes, the decode time, against the JPEG bytes on disk.

    python bench/bench_memory.py [--epochs 1] [--limit 300] [--no-notebook] [--sizes 256 128]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import REPO_ROOT, add_common_args, emit, machine_line, use_bench_cache  # noqa: E402
from bench._machine import OthersMeter, wait_idle  # noqa: E402

MiB = 2**20


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def child_trial(args) -> dict:
    use_bench_cache()
    import tensorflow  # noqa: F401

    after_import = _status_kib("VmRSS")
    from polyp_ray.config import DataConfig, TrialConfig
    from polyp_ray.trial import run_trial

    class NullReporter:
        def restore(self):
            return None

        def report(self, metrics, checkpoint_dir):
            pass

    config = TrialConfig(model="unet", base_width=64, image_size=128, batch_size=4, aug_strength=0.5,
                         learning_rate=1e-3, epochs=args.epochs, precision=args.precision, evaluate_test=False,
                         data=DataConfig(path=args.data, limit=args.limit, val_fraction=0.1, test_fraction=0.2))
    t0 = time.perf_counter()
    result = run_trial(config, NullReporter())
    return {"kind": "ours", "vm_hwm_kib": _status_kib("VmHWM"), "rss_after_tf_import_kib": after_import,
            "n_params": result.n_params, "seconds": time.perf_counter() - t0, "precision": args.precision}


def child_notebook(args) -> dict:
    import tensorflow  # noqa: F401

    after_import = _status_kib("VmRSS")
    from bench.notebook_baseline import build_notebook_unet, list_kvasir_pairs, notebook_fit, notebook_pipeline

    x, y = list_kvasir_pairs(args.data, args.limit)
    n_val = len(x) // 5  # the notebook: train_test_split(test_size=0.2)
    train = notebook_pipeline(x[n_val:], y[n_val:], 128, 4, is_train=True)
    val = notebook_pipeline(x[:n_val], y[:n_val], 128, 4, is_train=False)
    model = build_notebook_unet(128, 4)
    t0 = time.perf_counter()
    notebook_fit(model, train, val, len(x) - n_val, n_val, max_epochs=args.epochs, verbose=0)
    return {"kind": "notebook", "vm_hwm_kib": _status_kib("VmHWM"), "rss_after_tf_import_kib": after_import,
            "n_params": model.count_params(), "seconds": time.perf_counter() - t0, "precision": "float32"}


def measure_child(kind: str, args) -> dict:
    import json

    cmd = [sys.executable, str(Path(__file__).resolve()), "--_child", kind, "--data", args.data, "--limit",
           str(args.limit), "--epochs", str(args.epochs), "--precision", args.precision]
    wait_idle(args.wait_idle)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    meter = OthersMeter()
    meter.start()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, cwd=REPO_ROOT)
    others = meter.stop()
    maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux; max over waited children
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{kind} failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
    res = json.loads(lines[-1][7:])
    res["ru_maxrss_kib"] = maxrss if maxrss > before else None  # None: an earlier child peaked higher
    res["other_processes_cores"] = others
    return res


def cache_sizes(args) -> list[dict]:
    from polyp_ray.config import DataConfig
    from polyp_ray.data.dataset import describe_dataset, prepare_data

    cache = Path(tempfile.mkdtemp(prefix="polyp_ray_bench_cache_"))
    config = DataConfig(path=args.data, cache_dir=str(cache))
    _, pairs = describe_dataset(config)
    jpeg_images = sum(p.image.stat().st_size for p in pairs)
    jpeg_masks = sum(p.mask.stat().st_size for p in pairs)
    rows = []
    for size in args.sizes:
        before = {f: f.stat().st_size for f in cache.glob("decoded/*.npy")}
        wait_idle(args.wait_idle)
        t0 = time.perf_counter()
        prepare_data(config, size)
        decode_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        prepare_data(config, size)
        cached_s = time.perf_counter() - t0
        new = {f: f.stat().st_size for f in cache.glob("decoded/*.npy") if f not in before}
        images = sum(s for f, s in new.items() if f.name.endswith("-images.npy"))
        masks = sum(s for f, s in new.items() if f.name.endswith("-masks.npy"))
        rows.append({"size": size, "n": len(pairs), "images_bytes": images, "masks_bytes": masks,
                     "npy_bytes": images + masks, "jpeg_images_bytes": jpeg_images, "jpeg_masks_bytes": jpeg_masks,
                     "jpeg_bytes": jpeg_images + jpeg_masks, "decode_s": decode_s, "cached_s": cached_s})
    shutil.rmtree(cache, ignore_errors=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(ap)
    ap.add_argument("--limit", type=int, default=300, help="(a) first N Kvasir pairs (default 300, the notebook's)")
    ap.add_argument("--epochs", type=int, default=1, help="(a) epochs (default 1)")
    ap.add_argument("--precision", default="float32", help="(a) ours: float32 (the notebook's) or mixed_bfloat16")
    ap.add_argument("--no-notebook", action="store_true", help="(a) skip the notebook port's peak RSS")
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 128], help="(b) image sizes (default 256 128)")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--_child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    use_bench_cache()
    if args._child == "ours":
        emit(child_trial(args))
        return 0
    if args._child == "notebook":
        emit(child_notebook(args))
        return 0

    started = time.perf_counter()
    print(machine_line(), flush=True)
    trials = [measure_child("ours", args)]
    if not args.no_notebook:
        trials.append(measure_child("notebook", args))
    for t in trials:
        rss = t["ru_maxrss_kib"]
        print(f"(a) {t['kind']:8s} peak RSS {rss / 1024 if rss else float('nan'):.0f} MiB (ru_maxrss), VmHWM "
              f"{t['vm_hwm_kib'] / 1024:.0f} MiB, after importing TF {t['rss_after_tf_import_kib'] / 1024:.0f} MiB; "
              f"{t['n_params']:,} params, {t['precision']}, {t['seconds']:.0f} s; other_processes_cores "
              f"{t['other_processes_cores']:.2f}", flush=True)
    caches = cache_sizes(args)
    for c in caches:
        print(f"(b) {c['n']} pairs at {c['size']} px: .npy {c['npy_bytes'] / MiB:.1f} MiB (images "
              f"{c['images_bytes'] / MiB:.1f} + masks {c['masks_bytes'] / MiB:.1f}) vs JPEG "
              f"{c['jpeg_bytes'] / MiB:.1f} MiB "
              f"on disk = {c['npy_bytes'] / c['jpeg_bytes']:.2f}x; decode {c['decode_s']:.1f} s once, "
              f"then {1e3 * c['cached_s']:.0f} ms from the cache", flush=True)

    print(f"\n==== bench_memory summary ({time.perf_counter() - started:.0f} s) ====")
    print(machine_line())
    ours = trials[0]
    peak = (ours["ru_maxrss_kib"] or ours["vm_hwm_kib"]) / 1024
    line = (f"PEAK RSS one trial at the notebook's settings ({ours['precision']}, {args.epochs} epoch(s)): "
            f"{peak:.0f} MiB")
    if len(trials) > 1:
        nb = (trials[1]["ru_maxrss_kib"] or trials[1]["vm_hwm_kib"]) / 1024
        line += f"; notebook port {nb:.0f} MiB (ours/notebook {peak / nb:.2f})"
    print(line + f"; other_processes_cores {max(t['other_processes_cores'] for t in trials):.2f}")
    for c in caches:
        print(f"CACHE {c['n']} Kvasir pairs at {c['size']} px: {c['npy_bytes'] / MiB:.1f} MiB of .npy vs "
              f"{c['jpeg_bytes'] / MiB:.1f} MiB of JPEG: RATIO {c['npy_bytes'] / c['jpeg_bytes']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
