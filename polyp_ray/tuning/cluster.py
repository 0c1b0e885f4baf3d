"""Start a private local Ray, or attach to a cluster only when asked, failing fast when it is unreachable."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import ray

from polyp_ray.config import JobConfig
from polyp_ray.errors import ConfigError, PolypRayError, one_line

CONNECT_TIMEOUT_S = 5.0
JOIN_TIMEOUT_S = float(os.environ.get("POLYP_RAY_JOIN_TIMEOUT_S", "600"))


def start_ray(address: str | None, verbose: bool = False, min_nodes: int = 1) -> None:
    """``address`` None: a new local Ray of this process's own, even where an earlier ``ray start`` left
    a (possibly dead) cluster behind, which ``ray.init()`` would silently try to join."""
    # Tune warns when checkpoints of short epochs trigger frequent state snapshots; expected here.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if ray.is_initialized():
        return
    if not address:
        try:
            ray.init(address="local", include_dashboard=False, log_to_driver=verbose)
        except Exception as err:  # noqa: BLE001 - e.g. a raylet too slow to register on an overloaded machine
            raise PolypRayError(f"could not start a local Ray ({one_line(err)}); run the search again "
                                "(--resume where it had started)") from None
        return
    _check_reachable(address)
    try:
        ray.init(address=address, log_to_driver=verbose)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise ConfigError(f"--address {address}: cannot attach to a Ray cluster ({one_line(err)})") from None
    wait_for_nodes(min_nodes, address)


def wait_for_nodes(count: int, address: str, timeout_s: float = JOIN_TIMEOUT_S) -> None:
    """A batch job's workers join the head one by one: trials placed before the last one joins would
    crowd the first nodes (and a job whose worker never comes should say so, not run half-sized)."""
    deadline = time.monotonic() + timeout_s
    while (alive := sum(node["Alive"] for node in ray.nodes())) < count:
        if time.monotonic() > deadline:
            raise ConfigError(f"--min-nodes {count}: only {alive} Ray node(s) joined {address} in {timeout_s:.0f} s")
        time.sleep(0.5)
    if count > 1:
        print(f"{alive} Ray nodes joined {address}", flush=True)


def _check_reachable(address: str) -> None:
    """One TCP connect to the head's GCS port: Ray itself retries a dead address for minutes."""
    target = _current_cluster() if address == "auto" else address.removeprefix("ray://")
    if target is None:
        raise ConfigError("--address auto: no running Ray cluster found on this machine (start one with "
                          "`ray start --head`, or give HOST:PORT)")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        return  # a form Ray understands and we do not (e.g. a client URL): let ray.init judge it
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as err:
        raise ConfigError(f"--address {address}: no Ray cluster answers at {target} "
                          f"({err.strerror or err}); is the head running?") from None


def _current_cluster() -> str | None:
    """The address ``ray start --head`` on this machine recorded (it outlives a crashed cluster)."""
    if os.environ.get("RAY_ADDRESS"):
        return os.environ["RAY_ADDRESS"]
    recorded = Path(os.environ.get("RAY_TMPDIR", "/tmp")) / "ray" / "ray_current_cluster"
    try:
        return recorded.read_text().strip() or None
    except OSError:
        return None


def check_local_resources(job: JobConfig) -> None:
    """A local Ray cannot grow: a trial that asks for more than this machine has would wait forever.
    (On a cluster, --address, the autoscaler may still add the nodes, so nothing is checked there.)"""
    have = ray.cluster_resources()
    for key, name in (("cpu", "CPU"), ("gpu", "GPU")):
        want = getattr(job.resources, key)
        if want > have.get(name, 0):
            raise ConfigError(f"resources.{key}: each trial asks for {want:g} {name} but this machine has "
                              f"{have.get(name, 0):g}; lower it (--set resources.{key}=...) or attach to a "
                              "cluster with --address")

