"""A real two-node Ray cluster on 127.0.0.1 (head + worker, token auth, the Jobs API on the head) and a
search submitted to it as a Ray Job (docs/cluster.md, "Start, run, watch, fetch, stop"): trials run on
both nodes, losing the worker node mid-search does not lose the search, and the report is found in the
experiment folder after Ray has deleted the job's working directory. One search for all three: each
would otherwise start a cluster and run a search of its own."""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO, write_job
from tests.ray_nodes import RAY, free_port, stop_session

pytestmark = pytest.mark.slow










class Cluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
                    "RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3"}
        self.sessions: dict[str, int] = {}
        self.dashboard_port = free_port()  # the head's Jobs API

    @property
    def dashboard(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def start(self, name: str, *args: str) -> None:
        # Each node's dashboard agent and metrics on ports of their own: two on one machine would both take
        # the default, and the test never meets another Ray on this machine.
        common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--num-gpus=0", "--disable-usage-stats",
                  f"--dashboard-agent-listen-port={free_port()}", f"--metrics-export-port={free_port()}",
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
                      "--include-dashboard=true", "--dashboard-host=127.0.0.1",
                      f"--dashboard-port={cluster.dashboard_port}")
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


def _client(cluster: Cluster):
    from ray.job_submission import JobSubmissionClient

    # The token in the request itself, as `ray job submit` sends it with RAY_AUTH_MODE=token.
    headers = {"Authorization": f"Bearer {cluster.env['RAY_AUTH_TOKEN']}"}
    deadline = time.monotonic() + 60
    while True:  # the dashboard's HTTP server comes up a little after `ray start` returns
        try:
            return JobSubmissionClient(cluster.dashboard, headers=headers)
        except ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def _working_dir(folder: Path) -> Path:
    """What `--working-dir .` uploads of the repository that the job needs: the package (the job's
    ``python -m polyp_ray.search`` imports this copy, the first entry of its path) and a tiny job."""
    shutil.copytree(REPO / "polyp_ray", folder / "polyp_ray", ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def test_a_search_submitted_as_a_ray_job_runs_on_both_nodes_survives_losing_one_and_keeps_its_report(
        cluster: Cluster, tmp_path: Path) -> None:
    from ray.job_submission import JobStatus

    work = _working_dir(tmp_path / "work")
    storage = tmp_path / "exp"  # absolute: the job's working directory does not outlive it
    write_job(work, "multi", storage, num_samples=2, epochs=6, grace_period=6, max_concurrent=2, max_failures=3,
              space="model: {choices: [unet]}\nbase_width: {choices: [4]}\nimage_size: {choices: [64]}\n"
                    "learning_rate: {low: 1.0e-3, high: 1.0e-2, log: true}\n",
              data={"synthetic_count": 96})
    exp = storage / "multi-run"
    client = _client(cluster)
    entrypoint = f"{shlex.quote(sys.executable)} -m polyp_ray.search --job multi.yaml --address auto --name multi-run"
    job_id = client.submit_job(entrypoint=entrypoint, runtime_env={"working_dir": str(work)})
    ended = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}
    deadline = time.monotonic() + 600
    while len(set().union(*_node_ids(exp).values()) if exp.exists() and _node_ids(exp) else set()) < 2:
        assert client.get_job_status(job_id) not in ended, client.get_job_logs(job_id)[-3000:]
        assert time.monotonic() < deadline, "trials never ran on two nodes"
        time.sleep(0.5)
    stop_session(cluster.sessions.pop("w"), signal.SIGKILL)  # lose the worker node mid-search
    deadline = time.monotonic() + 900
    while (status := client.get_job_status(job_id)) not in ended:
        assert time.monotonic() < deadline, f"job {job_id} still {status}"
        time.sleep(1)
    logs = client.get_job_logs(job_id)
    assert status == JobStatus.SUCCEEDED, logs[-4000:]

    table = pd.read_csv(exp / "polyp_ray" / "trials.csv")
    assert len(table) == 2 and set(table["status"]) == {"TERMINATED"}
    assert (table["epochs_run"] == 6).all()
    nodes = _node_ids(exp)
    assert len(set().union(*nodes.values())) == 2
    # The trial that lost its node finished on the other one: its epochs were reported from both.
    assert any(len(ids) == 2 for ids in nodes.values()), nodes

    report = exp / "polyp_ray" / "report.html"
    assert report.is_file(), logs[-2000:]
    html = report.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html") and "multi-run" in html
    assert (exp / "polyp_ray" / "best" / "model.keras").is_file()
    # the job names both copies: the lasting one, and the one in its working directory
    printed = [line.removeprefix("report: ") for line in logs.splitlines() if line.startswith("report: ")]
    assert printed[0] == str(report), logs[-2000:]
    assert len(printed) == 2 and printed[1].endswith("/reports/multi-run.html") and not printed[1].startswith(
        str(work)), printed  # Ray ran the job in its own copy of the working directory, not in ours
    assert not (work / "reports").exists()
