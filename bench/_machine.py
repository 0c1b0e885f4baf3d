"""Small helpers for honest CPU benchmarks on a shared 2-core machine: how busy are the others?"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path


def busy_cpu_s() -> float:
    """CPU-seconds the whole machine has spent busy so far (/proc/stat; 0 where unavailable)."""
    try:
        fields = [int(f) for f in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def wait_idle(max_wait_s: float, threshold: float = 0.3, quiet: bool = False) -> float:
    """Wait (up to max_wait_s) until other processes use < threshold cores; return their last load."""
    deadline = time.monotonic() + max_wait_s
    warned = False
    while True:
        b0 = busy_cpu_s()
        time.sleep(2.0)
        load = (busy_cpu_s() - b0) / 2.0
        if load < threshold or time.monotonic() >= deadline:
            if warned and not quiet:
                print(f"  (other processes now use {load:.1f} cores)", flush=True)
            return load
        if not warned and not quiet:
            print(
                f"  (other processes use {load:.1f} cores; waiting up to {max_wait_s:.0f} s for idle)",
                flush=True,
            )
            warned = True


class OthersMeter:
    """Cores used by processes other than this one (and its children) between start() and stop()."""

    def start(self) -> None:
        self._b, self._own, self._t = (
            busy_cpu_s(),
            time.process_time() + children_cpu_s(),
            time.perf_counter(),
        )

    def stop(self) -> float:
        wall = time.perf_counter() - self._t
        own = time.process_time() + children_cpu_s() - self._own
        return max(0.0, (busy_cpu_s() - self._b - own) / wall) if wall > 0 else 0.0
