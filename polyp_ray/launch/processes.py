"""The processes of one Ray node, found by its private temp dir (every Ray process of a node names it
on its command line: ``--temp-dir``, ``--session-dir``, ``--log-dir``...), and stopped as ``ray stop``
does it (SIGTERM, then SIGKILL for what lingers) without touching any other Ray on the machine."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path


def marked(marker: str) -> list[int]:
    """This user's live processes whose command line contains ``marker`` (this process excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if entry.stat().st_uid != os.getuid():
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:  # gone meanwhile
            continue
        if marker in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def stop_marked(marker: str, grace_s: float = 5.0) -> int:
    """SIGTERM every process of ``marker``, SIGKILL what is left after ``grace_s``; how many were left."""
    pids = marked(marker)
    for pid in pids:
        send(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while (left := marked(marker)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in left:
        send(pid, signal.SIGKILL)
    return len(left)


def send(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


def node_ip() -> str:
    """This node's address as other nodes reach it: ``POLYP_RAY_NODE_IP`` when set, else the source
    address of the default route (a UDP socket's connect sends nothing), else the loopback."""
    if os.environ.get("POLYP_RAY_NODE_IP"):
        return os.environ["POLYP_RAY_NODE_IP"]
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("10.254.254.254", 1))
            return str(sock.getsockname()[0])
    except OSError:
        return "127.0.0.1"


def wait_for_port(host: str, port: int, timeout_s: float, alive: Callable[[], bool]) -> bool:
    """Whether ``host:port`` accepted a connection within ``timeout_s`` while ``alive()`` held."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and alive():
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.3)
    return False

