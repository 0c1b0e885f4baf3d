"""``python -m polyp_ray.slurm`` against a real Slurm: munged, slurmctld and slurmd on 127.0.0.1 (a
one-node cluster of this machine's CPUs, tests/launch/slurm_cluster.py), started here and stopped by
process id. A two-task job (a Ray head in the batch step, a Ray worker in an srun step) starts a tiny
search and is scancelled mid-search; resubmitted with --resume, a second two-task job runs it to its
report; after each, nothing of the job's Ray is left running.

It takes about 2 minutes on a 2-core machine (two searches' Ray start-up, TensorFlow imports and report),
more than the suite's budget for it: it is marked slow."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import write_job
from tests.launch import slurm_cluster
from tests.launch.slurm_cluster import SlurmCluster
from tests.ray_nodes import RAY

pytestmark = pytest.mark.slow

SPACE = ("model: {choices: [unet]}\nbase_width: {choices: [4]}\nimage_size: {choices: [32]}\n"
         "batch_size: {choices: [8]}\nlearning_rate: {low: 1.0e-3, high: 1.0e-2, log: true}\n")


@pytest.fixture(scope="module")
def slurm() -> Iterator[SlurmCluster]:
    if (why := slurm_cluster.missing()) is not None:
        pytest.skip(why)
    root = Path(f"/tmp/prsl{os.getpid()}")  # short: munge's and Ray's sockets live under it
    root.mkdir()
    cluster = SlurmCluster(root)
    cluster.env.update(POLYP_RAY_NODE_IP="127.0.0.1")  # the jobs' Ray stays on the loopback
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def launch(slurm: SlurmCluster, folder: Path, job: Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "polyp_ray.slurm", "--job", str(job), "--nodes", "1",
                           "--tasks-per-node", "2", "--cpus-per-task", "1", "--time", "10",
                           "--term-before", "60", "--object-store-gb", "0.2", "--temp-root", str(slurm.root),
                           "--launch-dir", str(folder / "launch"), *args],
                          cwd=folder, env=slurm.env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    match = re.search(r"submitted job (\d+)", proc.stdout)
    assert match, proc.stdout
    return match.group(1)


def output(folder: Path, job_id: str) -> str:
    path = folder / "launch" / f"slurm-{job_id}.out"
    return path.read_text(errors="replace") if path.exists() else ""


def head_address(folder: Path, job_id: str) -> str:
    match = re.search(r"ray head at (\S+)", output(folder, job_id))
    assert match, output(folder, job_id)[-3000:]
    return match.group(1)


def assert_no_ray_left(slurm: SlurmCluster, folder: Path, job_id: str) -> None:
    """Nothing names the job's temp dir, nothing listens on the head's port, and the token is gone."""
    from polyp_ray.launch.processes import marked

    temp = slurm.root / f"polyp-ray-{job_id}"
    deadline = time.monotonic() + 40  # Slurm's own SIGKILL comes KillWait (30 s) after its SIGTERM
    while (left := marked(f"{temp}/")) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, [Path(f"/proc/{pid}/cmdline").read_bytes()[:200] for pid in left]
    assert not temp.exists()
    host, _, port = head_address(folder, job_id).rpartition(":")
    with pytest.raises(OSError), socket.create_connection((host, int(port)), timeout=5):
        pass
    assert not (folder / "launch" / f"job-{job_id}").exists(), "the job's token was left behind"


def ray_status_finds_nothing(slurm: SlurmCluster, addresses: list[str]) -> None:
    # Ray's defaults wait 5 s to connect, then 60 s for a GCS to come back: a live GCS on 127.0.0.1 answers
    # in milliseconds.
    env = {**slurm.env, "RAY_gcs_rpc_server_connect_timeout_s": "2", "RAY_gcs_rpc_server_reconnect_timeout_s": "2"}
    procs = [subprocess.Popen([RAY, "status", f"--address={address}"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for address in addresses]
    for address, proc in zip(addresses, procs, strict=True):
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode != 0, f"ray status found a Ray at {address}: {out[-2000:]}"


def node_ids(exp: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for trial in exp.glob("tune_trial_*"):
        if (trial / "result.json").exists():
            for line in (trial / "result.json").read_text().splitlines():
                found.setdefault(trial.name, set()).add(json.loads(line)["node_id"])
    return found


def test_a_cancelled_job_stops_its_ray_and_a_resumed_one_runs_the_search_to_its_report(
        slurm: SlurmCluster, tmp_path: Path) -> None:
    """One search for both of the issue's jobs (each costs a minute here): the first job starts it fresh
    and is scancelled after the first reported epoch; the second, a 2-task job like the first, resumes it
    through a Ray head and an srun worker to its report."""
    job = write_job(tmp_path, "sc", tmp_path / "exp", space=SPACE, num_samples=2, epochs=4, grace_period=4,
                    data={"synthetic_count": 32})
    exp = tmp_path / "exp" / "sc-run"
    first = launch(slurm, tmp_path, job, "--name", "sc-run")
    deadline = time.monotonic() + 600
    while not any(node_ids(exp).values()) if exp.exists() else True:
        assert slurm.job_state(first) in ("PENDING", "RUNNING", "CONFIGURING"), output(tmp_path, first)[-3000:]
        assert time.monotonic() < deadline, "no trial reported an epoch"
        time.sleep(0.5)
    log = output(tmp_path, first)
    assert "ray workers: 1 on" in log and "through srun" in log and "2 Ray nodes joined" in log, log[-3000:]
    token = tmp_path / "launch" / f"job-{first}" / "auth_token"
    assert token.stat().st_mode & 0o777 == 0o600 and token.parent.stat().st_mode & 0o777 == 0o700
    assert slurm.run("scancel", first).returncode == 0
    assert slurm.wait_job(first, 120) == "CANCELLED"
    assert_no_ray_left(slurm, tmp_path, first)
    assert not (exp / "polyp_ray" / "trials.csv").exists()  # cancelled: nothing scored as if finished
    before = set().union(*node_ids(exp).values())

    second = launch(slurm, tmp_path, job, "--resume", "--name", "sc-run")
    state = slurm.wait_job(second, 600)
    log = output(tmp_path, second)
    assert state == "COMPLETED", log[-4000:]
    assert "resuming" in log and "2 Ray nodes joined" in log, log[-3000:]
    table = pd.read_csv(exp / "polyp_ray" / "trials.csv")
    assert len(table) == 2 and set(table["status"]) == {"TERMINATED"} and (table["epochs_run"] == 4).all()
    assert len(set().union(*node_ids(exp).values()) - before) == 2, "the resumed trials did not use both Ray nodes"
    report = exp / "polyp_ray" / "report.html"
    assert report.is_file() and "sc-run" in report.read_text(encoding="utf-8"), log[-3000:]
    assert_no_ray_left(slurm, tmp_path, second)
    ray_status_finds_nothing(slurm, [head_address(tmp_path, first), head_address(tmp_path, second)])
