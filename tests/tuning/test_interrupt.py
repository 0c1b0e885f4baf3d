"""A search stopped with SIGTERM mid-fit (what Slurm sends before a job's time limit, docs/slurm.md)
snapshots through Tune and ends as interrupted: exit 130 and the line to resume, Tune's state on disk to
resume from, and none of what follows a finished search (trials table, test scores, report)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import search_command, write_job

pytestmark = pytest.mark.slow


def _reported(exp: Path) -> bool:
    return any(path.read_text().strip() for path in exp.glob("tune_trial_*/result.json"))


def test_sigterm_mid_search_snapshots_and_writes_no_results(tmp_path: Path) -> None:
    job = write_job(tmp_path, "term", tmp_path / "exp", num_samples=2, epochs=20, grace_period=20,
                    data={"synthetic_count": 32})
    exp = tmp_path / "exp" / "term-run"
    proc = subprocess.Popen(search_command("--job", str(job), "--name", "term-run"), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while not (exp.exists() and _reported(exp)):
            assert proc.poll() is None, proc.stdout.read()[-3000:] if proc.stdout else ""
            assert time.monotonic() < deadline, "no trial reported an epoch"
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)  # the driver alone, as Slurm's --signal=B:TERM reaches it
        console, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, console[-3000:]
    assert "SIGTERM: Tune snapshots the search" in console and "interrupted; resume with --resume" in console
    state = sorted(exp.glob("experiment_state-*.json"))
    assert state, "Tune wrote no snapshot"
    assert json.loads(state[-1].read_text())["trial_data"], "the snapshot lists no trial"
    for written_after_the_trials in ("trials.csv", "report.html", "best"):
        assert not (exp / "polyp_ray" / written_after_the_trials).exists(), written_after_the_trials
    assert not (tmp_path / "reports").exists()
