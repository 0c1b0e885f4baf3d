"""A team PostgreSQL server (``optuna_storage``) that the test starts on 127.0.0.1 holds a search's study.
(The study file of a SIGKILLed and resumed search is checked in tests/test_search.py.)"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from tests.conftest import search_command, write_job

pytestmark = pytest.mark.slow


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("postgres") else None


def _install_postgres() -> Path | None:
    """Debian's postgresql package, only where this is root with apt (the suite's CI container)."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    subprocess.run(["apt-get", "update", "-q"], capture_output=True, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], capture_output=True, timeout=900)
    return _postgres_bin()


@pytest.fixture
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL server on 127.0.0.1 (a free port, trust auth), stopped by its pid."""
    pytest.importorskip("psycopg", reason="psycopg (PostgreSQL driver of SQLAlchemy 2.1) is in the test extra")
    bin_dir = _postgres_bin() or _install_postgres()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed and cannot be (needs root and apt-get): apt-get install postgresql")
    # PostgreSQL refuses to run as root: as root the server runs as the postgres user the package made.
    user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    data = Path(tempfile.mkdtemp(prefix="polyp_ray_pg_"))  # outside pytest's root-only tmp folders
    shutil.chown(data, user)
    as_user = {"user": user} if os.geteuid() == 0 else {}
    subprocess.run([str(bin_dir / "initdb"), "-D", str(data / "db"), "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True, cwd=data, **as_user)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([str(bin_dir / "postgres"), "-D", str(data / "db"), "-h", "127.0.0.1",
                               "-p", str(port), "-k", str(data)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, cwd=data, **as_user)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "PostgreSQL did not start"
                time.sleep(0.3)
        time.sleep(1)  # the port opens a moment before the server accepts logins
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        server.send_signal(signal.SIGINT)  # PostgreSQL's "fast" shutdown
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(data, ignore_errors=True)


def test_a_search_keeps_its_study_in_a_team_postgresql(postgres: str, tmp_path: Path) -> None:
    job = write_job(tmp_path, "pg", tmp_path / "experiments", num_samples=2, epochs=1, grace_period=1,
                    optuna_storage=postgres, data={"synthetic_count": 32})
    proc = subprocess.run(search_command("--job", str(job), "--name", "pg-run", "--no-report"), cwd=tmp_path,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ours = tmp_path / "experiments" / "pg-run" / "polyp_ray"
    assert not (ours / "optuna.db").exists()
    study = optuna.load_study(study_name="pg-run", storage=postgres)
    table = pd.read_csv(ours / "trials.csv")
    finished = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(finished) == 2 and sorted(t.value for t in finished) == pytest.approx(sorted(table["best_val_dice"]))
    assert all(sorted(t.intermediate_values) == [1] for t in finished)
