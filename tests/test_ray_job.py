"""The search submitted as a Ray Job (docs/cluster.md, "Start, run, watch, fetch, stop"): a head on 127.0.0.1
with token authentication and the Jobs API, a small search through ``JobSubmissionClient``, and the
report found in the experiment folder after Ray has deleted the job's working directory."""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, write_job
from tests.ray_nodes import RAY, free_port, stop_session

pytestmark = pytest.mark.slow










@dataclass(frozen=True)
class Head:
    dashboard: str  # the Jobs API's address
    token: str


@pytest.fixture
def head() -> Iterator[Head]:
    root = Path(f"/tmp/prj{os.getpid()}")  # it holds Unix sockets: the path must stay short
    root.mkdir(exist_ok=True)
    token = secrets.token_hex(32)
    # The job's driver inherits this environment from the node (the test's private caches included).
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    port = free_port()
    # Every port the dashboard and its agent would otherwise take at a fixed default is a free one, so the
    # test never meets another Ray on this machine.
    command = [RAY, "start", "--head", f"--port={port}", f"--ray-client-server-port={free_port()}",
               "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={(dash := free_port())}",
               f"--dashboard-agent-listen-port={free_port()}", f"--metrics-export-port={free_port()}",
               "--node-ip-address=127.0.0.1", "--num-cpus=2", "--num-gpus=0", "--object-store-memory=200000000",
               "--disable-usage-stats", f"--temp-dir={root}"]
    log = root / "head.log"
    sid = None
    try:
        with log.open("w") as sink:  # a file, not a pipe: the node's daemons keep their stdout open
            proc = subprocess.Popen(command, env=env, start_new_session=True, stdout=sink, stderr=subprocess.STDOUT)
            sid = proc.pid  # its session id: every process of the node stays in it
            assert proc.wait(timeout=120) == 0, log.read_text()
        yield Head(f"http://127.0.0.1:{dash}", token)
    finally:
        if sid is not None:
            stop_session(sid)
        shutil.rmtree(root, ignore_errors=True)


def _client(head: Head):
    from ray.job_submission import JobSubmissionClient

    # The token in the request itself, as `ray job submit` sends it with RAY_AUTH_MODE=token.
    headers = {"Authorization": f"Bearer {head.token}"}
    deadline = time.monotonic() + 60
    while True:  # the dashboard's HTTP server comes up a little after `ray start` returns
        try:
            return JobSubmissionClient(head.dashboard, headers=headers)
        except ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def _working_dir(folder: Path) -> Path:
    """What `--working-dir .` uploads of the repository that the job needs: the package (the job's
    ``python -m polyp_ray.search`` imports this copy, the first entry of its path) and a tiny job."""
    shutil.copytree(REPO / "polyp_ray", folder / "polyp_ray", ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def test_a_search_submitted_as_a_ray_job_leaves_its_report_in_the_experiment_folder(head: Head,
                                                                                       tmp_path: Path) -> None:
    from ray.job_submission import JobStatus

    work = _working_dir(tmp_path / "work")
    storage = tmp_path / "experiments"  # absolute: the job's working directory does not outlive it
    write_job(work, "rj", storage, num_samples=1, epochs=1, grace_period=1)  # one trial: the job is what is tested
    client = _client(head)
    entrypoint = (f"{shlex.quote(sys.executable)} -m polyp_ray.search --job rj.yaml --address auto "
                  "--name rj-run")
    job_id = client.submit_job(entrypoint=entrypoint, runtime_env={"working_dir": str(work)})
    deadline = time.monotonic() + 900
    while (status := client.get_job_status(job_id)) not in {JobStatus.SUCCEEDED, JobStatus.FAILED,
                                                             JobStatus.STOPPED}:
        assert time.monotonic() < deadline, f"job {job_id} still {status}"
        time.sleep(2)
    logs = client.get_job_logs(job_id)
    assert status == JobStatus.SUCCEEDED, logs[-4000:]

    experiment = storage / "rj-run"
    report = experiment / "polyp_ray" / "report.html"
    assert report.is_file(), logs[-2000:]
    html = report.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html") and "rj-run" in html
    assert (experiment / "polyp_ray" / "best" / "model.keras").is_file()
    # the job names both copies: the lasting one, and the one in its working directory
    printed = [line.removeprefix("report: ") for line in logs.splitlines() if line.startswith("report: ")]
    assert printed[0] == str(report), logs[-2000:]
    assert len(printed) == 2 and printed[1].endswith("/reports/rj-run.html") and not printed[1].startswith(
        str(work)), printed  # Ray ran the job in its own copy of the working directory, not in ours
    assert not (work / "reports").exists()
