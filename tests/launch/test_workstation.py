"""One GPU workstation, no cluster: a search starts its own local Ray, which counts this machine's GPUs,
and trials share them by the job's fractional ``resources.gpu``. A job whose trial asks for more GPUs
than the machine has would wait forever on a Ray that cannot grow, so it is refused at once, in one
line that names what is asked and what there is. The machine here has no GPU: Ray is told it has two
(``RAY_OVERRIDE_RESOURCES``, what Ray's own launcher uses to declare a node's resources)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.conftest import search_command, write_job


def test_a_job_asking_more_gpus_per_trial_than_the_workstation_has_is_refused_in_one_line(tmp_path: Path) -> None:
    job = write_job(tmp_path, "ws", tmp_path / "exp", resources={"cpu": 1, "gpu": 3})
    env = {**os.environ, "RAY_OVERRIDE_RESOURCES": json.dumps({"GPU": 2})}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run(search_command("--job", str(job), "--name", "ws-run"), cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [proc.stderr.strip().splitlines()[-1]], proc.stderr[-2000:]
    assert "resources.gpu: each trial asks for 3 GPU but this machine has 2" in errors[0]
    assert not list((tmp_path / "exp").glob("ws-run/tune_trial_*")), "a trial started"
