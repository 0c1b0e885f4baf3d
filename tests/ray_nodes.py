"""Ray nodes that tests start with ``ray start`` on 127.0.0.1, and stop again by process id: each node
runs in a session of its own, and stopping it signals exactly that session's processes (never
``ray stop``, which would stop every Ray on the machine, other tests' and other users' included)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def session_members(sid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every live process in session ``sid``."""
    out = subprocess.run(["ps", "-eo", "pid=,sid=,stat=,args="], capture_output=True, text=True).stdout
    rows = [(line.split(None, 3) + [""])[:4] for line in out.splitlines()]
    return [(int(pid), args) for pid, session, stat, args in rows if int(session) == sid and not stat.startswith("Z")]


def stop_session(sid: int, sig: int = signal.SIGTERM) -> None:
    """Stop one node by its session: the GCS last (as ``ray stop`` orders it), SIGKILL what lingers."""
    for gcs in (False, True):
        for pid, args in session_members(sid):
            if gcs == ("gcs_server" in args):
                _signal(pid, sig)
        time.sleep(1)
    # A node that stops cleanly is gone by now; one that lost a peer can keep its GCS and a monitor up
    # for many seconds after SIGTERM. Nothing of a test's throwaway node needs keeping: not long.
    deadline = time.monotonic() + 3
    while session_members(sid) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid, _ in session_members(sid):
        _signal(pid, signal.SIGKILL)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
