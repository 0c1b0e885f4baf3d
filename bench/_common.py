"""Shared plumbing of the comparison benchmarks: paths, the machine line, child processes.

Kept free of TensorFlow and Ray imports so a driver that only starts children stays light.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench._machine import busy_cpu_s, wait_idle  # noqa: E402

DEFAULT_CACHE = "/tmp/polyp_ray_bench_cache"


def default_kvasir_dir() -> str:
    """$POLYP_RAY_KVASIR, else ../shared/data/Kvasir-SEG beside the repository."""
    env = os.environ.get("POLYP_RAY_KVASIR")
    return env if env else str((REPO_ROOT / ".." / "shared" / "data" / "Kvasir-SEG").resolve())


def use_bench_cache() -> str:
    """Decoded-array caches go to $POLYP_RAY_CACHE, else a /tmp folder (never the user's home)."""
    os.environ.setdefault("POLYP_RAY_CACHE", DEFAULT_CACHE)
    return os.environ["POLYP_RAY_CACHE"]


def add_common_args(ap) -> None:
    ap.add_argument("--data", default=default_kvasir_dir(),
                    help="Kvasir-SEG folder (default $POLYP_RAY_KVASIR or ../shared/data/Kvasir-SEG)")
    ap.add_argument("--wait-idle", type=float, default=180,
                    help="before each timed part wait up to this many seconds for other processes to go idle")


def machine_line() -> str:
    """CPU model, core count, the instruction sets that matter for bf16, memory."""
    model, flags = platform.processor() or "?", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("?", "", "x86_64"):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    try:
        mem = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        mem = float("nan")
    isa = ", ".join(f"{f} {'yes' if f in flags else 'NO'}" for f in ("avx512_bf16", "amx_bf16"))
    return f"machine: {model}, {os.cpu_count()} cores, {mem:.0f} GiB, {isa}, no GPU used"


class TreeOthersMeter:
    """Cores used by processes OUTSIDE this process's tree between start() and stop().

    bench/_machine.py's OthersMeter counts only children that have been waited for, so the Ray worker
    processes of a search (children of raylet) would count as "others". This one samples /proc every
    ``interval`` seconds and subtracts the CPU time of this process and all its descendants (an exiting
    descendant's last interval is lost: a slight over-estimate of the others).
    """

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self._hz = os.sysconf("SC_CLK_TCK")

    def _snapshot(self) -> dict[int, float]:
        parent, cpu = {}, {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                raw = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            fields = raw[raw.rindex(")") + 2:].split()
            pid = int(entry.name)
            parent[pid] = int(fields[1])
            cpu[pid] = (int(fields[11]) + int(fields[12])) / self._hz
        tree, frontier = {self._root}, [self._root]
        children: dict[int, list[int]] = {}
        for pid, ppid in parent.items():
            children.setdefault(ppid, []).append(pid)
        while frontier:
            for child in children.get(frontier.pop(), []):
                if child not in tree:
                    tree.add(child)
                    frontier.append(child)
        return {pid: cpu[pid] for pid in tree if pid in cpu}

    def _tick(self) -> None:
        snap = self._snapshot()
        for pid, value in snap.items():
            self._tree_s += value - self._last.get(pid, 0.0)
        self._last = snap

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._tick()

    def start(self) -> None:
        self._root = os.getpid()
        self._last = self._snapshot()
        self._tree_s = 0.0
        self._busy0, self._t0 = busy_cpu_s(), time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self._tick()
        wall = time.perf_counter() - self._t0
        return max(0.0, (busy_cpu_s() - self._busy0 - self._tree_s) / wall) if wall > 0 else 0.0


def run_metered(cmd: list[str], timeout: float, wait_idle_s: float,
                env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, float, float]:
    """``cmd`` after an idle wait: the finished process, its wall seconds and the cores other processes
    used meanwhile. ``subprocess.TimeoutExpired`` passes through, the meter stopped."""
    wait_idle(wait_idle_s)
    meter = TreeOthersMeter()
    meter.start()
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})}, cwd=REPO_ROOT)
    finally:
        wall = time.perf_counter() - t0
        others = meter.stop()
    return proc, wall, others


def run_child(cmd: list[str], timeout: float, wait_idle_s: float, env: dict[str, str] | None = None,
              label: str = "child") -> dict | None:
    """Run ``cmd`` after an idle wait; return its ``RESULT {json}`` line (plus other_processes_cores
    and wall_s), or None with its stderr tail printed."""
    try:
        proc, wall, others = run_metered(cmd, timeout, wait_idle_s, env)
    except subprocess.TimeoutExpired:
        print(f"  {label}: timed out after {timeout:.0f} s", flush=True)
        return None
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            res = json.loads(line[7:])
            res["other_processes_cores"] = round(others, 2)
            res["child_wall_s"] = round(wall, 1)
            return res
    print(f"  {label}: failed (rc {proc.returncode})\n{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}", flush=True)
    return None


def emit(result: dict) -> None:
    """What a child prints last: one machine-readable line."""
    print("RESULT " + json.dumps(result), flush=True)


def run_search_cli(job: dict, work: Path, name: str, timeout: float, wait_idle_s: float) -> tuple[str, float, float]:
    """The real ``python -m polyp_ray.search`` on ``job`` (written to ``work/<name>.yaml``, experiment
    ``--name name``) after an idle wait: its stdout, wall seconds and the cores other processes used.
    A failed search ends the benchmark with the search's own output."""
    import yaml

    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False))
    cmd = [sys.executable, "-m", "polyp_ray.search", "--job", str(path), "--name", name, "--no-report"]
    proc, wall, others = run_metered(cmd, timeout, wait_idle_s)
    if proc.returncode != 0:
        raise SystemExit(f"{name}: search failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout, wall, others
