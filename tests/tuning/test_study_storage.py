"""A team PostgreSQL server (``optuna_storage``) that the test starts on 127.0.0.1 holds a search's study,
the search warm-started from an earlier experiment's study (tests/tuning/conftest.py): one search for
both, and for median stopping with CMA-ES. (The study file of a SIGKILLed and resumed search is checked
in tests/test_search.py.)"""

from __future__ import annotations

import glob
import json
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

from tests.conftest import SMALL_SPACE, write_job
from tests.tuning.conftest import assert_strategy_ran, run_search, study_of

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


def test_a_warm_started_search_keeps_its_study_in_a_team_postgresql(postgres: str, experiment: Path,
                                                                     tmp_path: Path) -> None:
    wider = SMALL_SPACE.replace("low: 1.0e-3", "low: 1.0e-4")  # widen a range: the earlier points stay valid
    # Under median stopping with CMA-ES: this is also that strategy's tiny search (test_strategy_searches.py).
    job = write_job(tmp_path, "warm", tmp_path / "experiments", space=wider, num_samples=1, epochs=2,
                    grace_period=2, warm_start=str(experiment), optuna_storage=postgres, data={"synthetic_count": 24},
                    ensemble_k=1, tta=False, scheduler="median", median={"min_samples_required": 1}, sampler="cmaes")
    proc = run_search(tmp_path, job, "warm-run", report=True)
    assert "warm start: 2 finished trials of study 'integ-run'" in proc.stdout
    warm = tmp_path / "experiments" / "warm-run"
    assert_strategy_ran(warm, proc.stdout, "median", "cmaes", trials=1)
    # The study is in PostgreSQL (the experiment records where), none beside the results.
    assert not (warm / "polyp_ray" / "optuna.db").exists()
    assert json.loads((warm / "polyp_ray" / "optuna.json").read_text())["storage"] == postgres
    study = optuna.load_study(study_name="warm-run", storage=postgres)
    finished = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(finished) == 3
    earlier = {t.number: t for t in study_of(experiment).trials}
    for trial in finished[:2]:
        source = earlier[int(trial.user_attrs["warm_start_from"].split("#")[1])]
        assert trial.params == source.params and trial.value == source.value
        assert trial.distributions["learning_rate"].low == 1e-4  # re-expressed in the wider space
    assert "warm_start_from" not in finished[2].user_attrs
    # Only the new trial was trained (the earlier ones cost nothing again); PostgreSQL holds its score and
    # its per-epoch values.
    table = pd.read_csv(warm / "polyp_ray" / "trials.csv")
    assert len(table) == 1 and finished[2].value == pytest.approx(table["best_val_dice"].iloc[0])
    assert sorted(finished[2].intermediate_values) == [1, 2]
