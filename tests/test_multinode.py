"""A real two-node Ray cluster on 127.0.0.1 (head + worker, token auth): trials run on both nodes,
and losing the worker node mid-search does not lose the search."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import search_command, write_job
from tests.ray_nodes import RAY, free_port, stop_session

pytestmark = pytest.mark.slow










class Cluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
                    "RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3"}
        self.sessions: dict[str, int] = {}

    def start(self, name: str, *args: str) -> None:
        # Each node's dashboard agent on a port of its own: two on one machine would both take the default.
        common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--num-gpus=0", "--disable-usage-stats",
                  f"--dashboard-agent-listen-port={free_port()}",
                  "--object-store-memory=200000000", f"--temp-dir={self.root / name}"]
        log = self.root / f"{name}.log"
        with log.open("w") as sink:  # a file, not a pipe: the node's daemons keep their stdout open
            proc = subprocess.Popen([RAY, "start", *args, *common], env=self.env, start_new_session=True,
                                    stdout=sink, stderr=subprocess.STDOUT)
            assert proc.wait(timeout=120) == 0, log.read_text()
        self.sessions[name] = proc.pid  # its session id: every process of this node stays in it


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = Path(f"/tmp/prn{os.getpid()}")  # Unix socket paths must stay short
    root.mkdir(exist_ok=True)
    cluster = Cluster(root)
    try:
        cluster.start("h", "--head", f"--port={cluster.port}", f"--ray-client-server-port={free_port()}",
                      "--include-dashboard=false")
        cluster.start("w", f"--address=127.0.0.1:{cluster.port}", '--resources={"node_worker": 1}')
        yield cluster
    finally:
        for name in ("w", "h"):
            if name in cluster.sessions:
                stop_session(cluster.sessions[name])
        subprocess.run(["rm", "-rf", str(root)], check=False)


def _node_ids(exp: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for trial in exp.glob("tune_trial_*"):
        path = trial / "result.json"
        if path.exists():
            for line in path.read_text().splitlines():
                found.setdefault(trial.name, set()).add(json.loads(line)["node_id"])
    return found


def test_trials_run_on_both_nodes_and_survive_losing_the_worker(cluster: Cluster, tmp_path: Path) -> None:
    job = write_job(tmp_path, "multi", tmp_path / "exp", num_samples=2, epochs=6, grace_period=6,
                    max_concurrent=2, max_failures=3,
                    space="model: {choices: [unet]}\nbase_width: {choices: [4]}\nimage_size: {choices: [64]}\n"
                          "learning_rate: {low: 1.0e-3, high: 1.0e-2, log: true}\n",
                    data={"synthetic_count": 96})
    exp = tmp_path / "exp" / "multi-run"
    proc = subprocess.Popen(search_command("--job", str(job), "--name", "multi-run", "--no-report",
                                           "--address", f"127.0.0.1:{cluster.port}"),
                            cwd=tmp_path, env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    deadline = time.monotonic() + 600
    while len(set().union(*_node_ids(exp).values()) if exp.exists() and _node_ids(exp) else set()) < 2:
        assert proc.poll() is None, proc.stdout.read()[-3000:] if proc.stdout else ""
        assert time.monotonic() < deadline, "trials never ran on two nodes"
        time.sleep(0.5)
    stop_session(cluster.sessions.pop("w"), signal.SIGKILL)  # lose the worker node mid-search
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out[-3000:]
    table = pd.read_csv(exp / "polyp_ray" / "trials.csv")
    assert len(table) == 2 and set(table["status"]) == {"TERMINATED"}
    assert (table["epochs_run"] == 6).all()
    nodes = _node_ids(exp)
    assert len(set().union(*nodes.values())) == 2
    # The trial that lost its node finished on the other one: its epochs were reported from both.
    assert any(len(ids) == 2 for ids in nodes.values()), nodes
