"""The GPU check: our own model code (polyp_ray.models, any decoder on any encoder) trained on random
batches with KERAS_BACKEND=jax, per encoder, image size and precision, on whatever device JAX finds.

    python bench/device/gpu_check.py --out "$OUT"          # the lent H200: about 8 minutes
    python bench/device/gpu_check.py --tiny                 # CPU smoke run (the suite's), a minute

It prints, per configuration, images/s, peak device memory, training GFLOP per image (analytic) and
the share of the bf16 matrix-product rate measured at the start of the same run; then a
fractional-GPU proxy (two processes on one GPU, each with 45% of its memory) against one process.
Every measurement is its own process (bench/device/_worker.py); up to ``--jobs`` of them compile at
once, and a file lock lets only one at a time train while it is timed. Neither this script nor its
workers import TensorFlow or Ray: a record says so from sys.modules, and the table refuses otherwise.
bench/device/README.md says what to carry to the device and where the figures go.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from polyp_ray.models.encoders import ENCODERS  # noqa: E402  (plain data: no Keras is loaded)

PRECISIONS = ("mixed_bfloat16", "float32", "mixed_float16")
# Quicker compiles first: on the H200 (2026-12-04) compiling one training step took 81-85 s for conv
# and resnet50 but 250-360 s for mobilenetv2 and efficientnetb0, six compiles at once, so a lease
# measures the most configurations in this order; --skip-measured carries on in the next lease.
COMPILE_ORDER = ("conv", "resnet50", "vgg16", "mobilenetv2", "efficientnetb0", "efficientnetb1",
                 "efficientnetb2", "efficientnetb3")
KEY = ("decoder", "encoder", "size", "precision", "batch", "base_width")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--encoders", nargs="+", choices=sorted(ENCODERS), help="default: every encoder")
    p.add_argument("--decoder", default="unet", choices=("unet", "encoder_decoder"))
    p.add_argument("--sizes", nargs="+", type=int, default=[256, 352])
    p.add_argument("--precisions", nargs="+", choices=PRECISIONS, help="default: all three")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--base-width", type=int, default=32)
    p.add_argument("--steps", type=int, default=10, help="steps per timed window")
    p.add_argument("--windows", type=int, default=5, help="timed windows per configuration (median)")
    p.add_argument("--share-seconds", type=float,
                   help="each window of the two-process proxy (default 4); 0 skips it")
    p.add_argument("--share-encoder", default="conv", choices=sorted(ENCODERS))
    p.add_argument("--peak-n", type=int, default=8192, help="matrix size of the bf16 peak measurement")
    p.add_argument("--jobs", type=int, default=6, help="measurement processes at once")
    p.add_argument("--budget-s", type=float, default=420.0,
                   help="start no configuration after this many seconds; kill what runs 60 s later")
    p.add_argument("--out", type=Path, help="write gpu_check.json(l) and gpu_check.md here")
    p.add_argument("--skip-measured", type=Path, metavar="JSONL",
                   help="leave out the configurations this earlier gpu_check.jsonl measured")
    p.add_argument("--tiny", action="store_true",
                   help="CPU smoke sizes: 32 px, batch 2, base width 4, conv and mobilenetv2, short windows")
    args = p.parse_args(argv)
    if args.tiny:
        args.encoders = args.encoders or ["conv", "mobilenetv2"]
        args.sizes, args.batch, args.base_width = [32], 2, 4
        args.steps, args.windows, args.peak_n, args.jobs = 2, 2, 256, 2
        args.share_seconds = 0.5 if args.share_seconds is None else args.share_seconds
        # XLA's CPU code generation at full optimisation is most of a tiny run's minutes; speed is not
        # what a tiny run measures.
        os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")
    args.encoders = args.encoders or [e for e in COMPILE_ORDER if e in ENCODERS]
    args.precisions = args.precisions or list(PRECISIONS)
    args.share_seconds = 4.0 if args.share_seconds is None else args.share_seconds
    for size in args.sizes:
        if size % 32:
            p.error(f"--sizes: {size}: must be a multiple of 32")
    if args.skip_measured and not args.skip_measured.is_file():
        p.error(f"--skip-measured: {args.skip_measured}: not found")
    return args


def measured(path: Path | None) -> set[tuple]:
    """The configurations an earlier run's records measured (not those it killed or never ran)."""
    if path is None:
        return set()
    done = set()
    for n, line in enumerate(path.read_text().splitlines(), 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise SystemExit(f"error: {path}:{n}: not a JSON line") from None
        if record.get("kind") == "train" and "images_per_s" in record and "share" not in record:
            done.add(tuple(record.get(k) for k in KEY))
    return done


def worker_env(memory_fraction: float | None) -> dict[str, str]:
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]), "TF_CPP_MIN_LOG_LEVEL": "2"}
    if memory_fraction is None:  # the pool: several processes, each taking only what it uses
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    else:
        env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = str(memory_fraction)
    return env


class Pool:
    """Runs worker tasks as subprocesses, at most ``jobs`` at once, within a time budget."""

    def __init__(self, jobs: int, started: float, budget_s: float, log: Path | None = None):
        self.jobs, self.started, self.budget_s, self.log = jobs, started, budget_s, log
        self.records: list[dict] = []

    def run(self, tasks: list[dict], memory_fraction: float | None = None) -> list[dict]:
        pending, running, done = list(tasks), [], []
        while pending or running:
            while pending and len(running) < self.jobs and self.elapsed() < self.budget_s:
                task = pending.pop(0)
                running.append((task, subprocess.Popen(
                    [sys.executable, str(HERE / "_worker.py"), json.dumps(task)], env=worker_env(memory_fraction),
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
            if not running:
                done += [{**t, "error": "not run (budget)"} for t in pending]
                break
            time.sleep(0.2)
            for task, proc in list(running):
                if proc.poll() is None and self.elapsed() < self.budget_s + 60:
                    continue
                running.remove((task, proc))
                if proc.poll() is None:
                    proc.kill()
                out, err = proc.communicate()
                done.append(self.collect(task, proc.returncode, out, err))
        return done

    def collect(self, task: dict, rc: int, out: str, err: str) -> dict:
        lines = out.strip().splitlines()
        try:
            record = json.loads(lines[-1]) if rc == 0 and lines else None
        except json.JSONDecodeError:
            record = None
        if record is None:
            last = (err.strip().splitlines() or [f"exit {rc}"])[-1]
            record = {**task, "error": "killed (budget)" if rc == -9 else last[:200]}
        record["finished_s"] = round(self.elapsed(), 1)
        print(f"  [{record['finished_s']:6.1f} s] {describe(record)}", flush=True)
        if self.log:  # as it comes, so a run cut short still leaves what it measured
            with self.log.open("a") as f:
                f.write(json.dumps(record) + "\n")
        self.records.append(record)
        return record

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def describe(r: dict) -> str:
    if r["kind"] == "peak":
        return f"bf16 matmul {r['n']}^3: {r['bf16_tflops']:.1f} TFLOP/s" if "error" not in r else r["error"]
    head = f"{r['decoder']}/{r['encoder']} {r['size']} px {r['precision']}"
    return f"{head}: {r['error']}" if "error" in r else f"{head}: {r['images_per_s']:.1f} images/s"


def table(records: list[dict], peak: float | None) -> list[str]:
    rows = ["| encoder | px | precision | batch | params | train GFLOP/img | images/s | peak MiB | "
            "% bf16 peak | compile s |", "|" + " --- |" * 10]
    order = {p: i for i, p in enumerate(PRECISIONS)}, {e: i for i, e in enumerate(COMPILE_ORDER)}
    trained = sorted((r for r in records if r["kind"] == "train"),
                     key=lambda r: (order[0][r["precision"]], r["size"], order[1].get(r["encoder"], 99)))
    for r in trained:
        if "error" in r:
            rows.append(f"| {r['encoder']} | {r['size']} | {r['precision']} | {r['batch']} | {r['error']} |"
                        + " |" * 5)
            continue
        share = r["images_per_s"] * r["train_gflop_per_image"] / 1e3 / peak * 100 if peak else None
        mib = f"{r['peak_mib']:,.0f}" if r["peak_mib"] is not None else "n/a"
        rows.append(f"| {r['encoder']} | {r['size']} | {r['precision']} | {r['batch']} | {r['params']:,} | "
                    f"{r['train_gflop_per_image']:.1f} | {r['images_per_s']:,.1f} | {mib} | "
                    f"{'n/a' if share is None else f'{share:.1f}'} | {r['compile_s']:.0f} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    log = None
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        log = args.out / "gpu_check.jsonl"
        log.unlink(missing_ok=True)
    pool = Pool(args.jobs, started, args.budget_s, log)
    common = {"decoder": args.decoder, "batch": args.batch, "base_width": args.base_width}
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp:
        print("bf16 matrix-product peak", flush=True)
        peak_rec = pool.run([{"kind": "peak", "n": args.peak_n, "repeats": 20}])[0]
        peak = peak_rec.get("bf16_tflops")
        shared: list[dict] = []
        if args.share_seconds > 0:
            size = args.sizes[0]
            print(f"fractional-GPU proxy: two processes, 45% of the memory each ({args.share_encoder}, {size} px)",
                  flush=True)
            pair = [{"kind": "train", "encoder": args.share_encoder, "size": size, "precision": args.precisions[0],
                     "share": tmp, "rank": rank, "seconds": args.share_seconds, **common} for rank in (0, 1)]
            shared = Pool(2, started, args.budget_s, log).run(pair, memory_fraction=0.45)
        print("encoders x sizes x precisions", flush=True)
        done = measured(args.skip_measured)
        tasks = [{"kind": "train", "encoder": e, "size": s, "precision": p, "steps": args.steps,
                  "windows": args.windows, "lock": str(Path(tmp) / "gpu.lock"), **common}
                 for p in args.precisions for s in args.sizes for e in args.encoders]
        tasks = [t for t in tasks if tuple(t[k] for k in KEY) not in done]
        records = pool.run(tasks)
    lines = report(args, peak_rec, shared, records, peak, time.monotonic() - started)
    print("\n".join(lines))
    if args.out:
        (args.out / "gpu_check.json").write_text(json.dumps([peak_rec, *shared, *records], indent=1))
        (args.out / "gpu_check.md").write_text("\n".join(lines) + "\n")
    loaded = [r for r in [peak_rec, *shared, *records] if r.get("tensorflow_loaded") or r.get("ray_loaded")]
    if loaded:
        print(f"error: {describe(loaded[0])}: TensorFlow or Ray was imported in a worker", file=sys.stderr)
        return 1
    return 0 if any("images_per_s" in r for r in records) else 1


def report(args, peak_rec: dict, shared: list[dict], records: list[dict], peak, wall_s: float) -> list[str]:
    first = next((r for r in [peak_rec, *records] if "device" in r), {})
    lines = ["", f"device: {first.get('device', '?')}; jax {first.get('jax', '?')}; decoder {args.decoder}, "
             f"base width {args.base_width}; random batches; {wall_s:.0f} s in all",
             "bf16 matmul peak: " + (f"{peak:.1f} TFLOP/s ({args.peak_n}^3, median of 20)" if peak
                                     else peak_rec.get("error", "?"))]
    lead = next((r for r in shared if r.get("rank") == 0 and "pair_images_per_s" in r), None)
    other = next((r for r in shared if r.get("rank") == 1 and "pair_images_per_s" in r), None)
    if not shared:
        lines.append("two processes on one GPU: not run (--share-seconds 0)")
    elif lead and other:
        both = lead["pair_images_per_s"] + other["pair_images_per_s"]
        lines.append(f"two processes on one GPU ({args.share_encoder}, {lead['size']} px, {lead['precision']}, "
                     f"batch {args.batch}): {both:,.1f} images/s together vs {lead['images_per_s']:,.1f} alone "
                     f"= {both / lead['images_per_s']:.2f}x")
    else:
        lines.append("two processes on one GPU: " + "; ".join(describe(r) for r in shared))
    return lines + [""] + table(records, peak)


if __name__ == "__main__":
    sys.exit(main())
