"""The HTML report at scale: build time, file size and peak memory for fabricated searches of 12, 200
and 2,000 trials (tests/report/fake_search.py writes the files a real search would).

    python bench/bench_report.py            # [--trials 12 200 2000] [--work /tmp/polyp_ray_bench_report]

Each report is built in a fresh child process (``build_report(..., gallery=False)``: the gallery loads a
Keras model, which a fabricated search has not got), so its peak RSS (getrusage) is its own; the child
also reports its RSS after the imports, before the build, and tracemalloc is left off because it slows
every allocation it counts. The last line is the 2,000-trial ratio to the target (20 s, 10 MB).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import emit, machine_line, run_child  # noqa: E402

TARGET_S, TARGET_MB = 20.0, 10.0


def child(exp: Path, out: Path) -> None:
    from polyp_ray.report import build_report

    before_mib = _rss_mib()
    start = time.perf_counter()
    build_report(exp, out, gallery=False)
    build_s = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    emit({"build_s": round(build_s, 2), "mb": round(out.stat().st_size / 1e6, 2),
          "peak_rss_mib": round(peak_mib), "rss_before_mib": round(before_mib)})


def _rss_mib() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def fabricated(work: Path, n: int) -> Path:
    """The fabricated experiment of ``n`` trials, written once and reused by later runs."""
    from tests.report.fake_search import write_search

    exp = work / f"search-{n}"
    if not (exp / "polyp_ray" / "trials.csv").is_file():
        shutil.rmtree(exp, ignore_errors=True)
        start = time.perf_counter()
        write_search(work, n)
        print(f"  fabricated {n} trials in {time.perf_counter() - start:.1f} s: {exp}", flush=True)
    return exp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, nargs="+", default=[12, 200, 2000])
    ap.add_argument("--work", type=Path, default=Path("/tmp/polyp_ray_bench_report"))
    ap.add_argument("--wait-idle", type=float, default=60,
                    help="before each build wait up to this many seconds for other processes to go idle")
    ap.add_argument("--child", nargs=2, metavar=("EXPERIMENT", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]))
        return
    print(machine_line(), flush=True)
    args.work.mkdir(parents=True, exist_ok=True)
    results = {}
    for n in args.trials:
        exp = fabricated(args.work, n)
        out = args.work / f"report-{n}.html"
        res = run_child([sys.executable, __file__, "--child", str(exp), str(out)], timeout=900,
                        wait_idle_s=args.wait_idle, label=f"{n} trials")
        if res is None:
            continue
        results[n] = res
        print(f"{n:>6} trials: {res['build_s']:6.1f} s  {res['mb']:5.2f} MB  peak RSS {res['peak_rss_mib']} MiB "
              f"(after imports {res['rss_before_mib']} MiB)  other processes {res['other_processes_cores']} cores",
              flush=True)
    print("RESULTS " + json.dumps(results), flush=True)
    last = results.get(max(args.trials)) if results else None
    if last is not None:
        print(f"{max(args.trials)} trials vs target: build {last['build_s'] / TARGET_S:.2f}x of {TARGET_S:.0f} s, "
              f"size {last['mb'] / TARGET_MB:.2f}x of {TARGET_MB:.0f} MB", flush=True)


if __name__ == "__main__":
    main()
