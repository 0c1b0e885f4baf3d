"""One Ray node of a batch job, in the foreground: ``python -m polyp_ray.launch.node --head ...`` (the
job's first task) or ``--address HEAD:PORT`` (a worker, one per further task, started through srun).

``ray start --block`` keeps the node's processes under this one, where the batch system tracks them,
and this wrapper stops all of them when it is stopped (SIGTERM from scancel, from the job's end or from
job.py) or when ``ray start`` dies: everything whose command line names the node's private temp dir,
SIGTERM first, SIGKILL a few seconds later. Token auth comes from the environment job.py sets
(``RAY_AUTH_MODE=token``, ``RAY_AUTH_TOKEN_PATH``)."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

from polyp_ray.launch.processes import free_port, node_ip, send, stop_marked

STOP_GRACE_S = 3.0


def ray_start_command(args: argparse.Namespace, temp_dir: Path, ip: str) -> list[str]:
    ray = str(Path(sys.executable).with_name("ray"))
    # Every port this node listens on is free here: two Ray nodes may share a machine (two jobs, or a
    # worker beside the head), and Ray's fixed defaults would collide.
    command = [ray, "start", "--block", f"--node-ip-address={ip}", f"--num-cpus={args.num_cpus}",
               f"--num-gpus={args.num_gpus}", f"--temp-dir={temp_dir}", "--disable-usage-stats",
               f"--dashboard-agent-listen-port={free_port()}", f"--metrics-export-port={free_port()}"]
    if args.object_store_memory:
        command.append(f"--object-store-memory={args.object_store_memory}")
    if args.address:
        return [*command, f"--address={args.address}"]
    command += ["--head", f"--port={args.port}", f"--ray-client-server-port={free_port()}"]
    if args.dashboard:
        return [*command, "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={free_port()}"]
    return [*command, "--include-dashboard=false"]


class Node:
    def __init__(self, command: list[str], temp_dir: Path) -> None:
        self.temp_dir = temp_dir
        self.proc = subprocess.Popen(command)
        self.stopping = False

    def stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        """Quick, so it is done within Slurm's KillWait even on scancel: SIGTERM to ``ray start`` and every
        process of the node at once (on its own, ``ray start`` would drain the node for 30 s), SIGKILL
        what is left after a few seconds."""
        if self.stopping:
            return
        self.stopping = True
        send(self.proc.pid, signal.SIGTERM)
        stop_marked(f"{self.temp_dir}/", grace_s=STOP_GRACE_S)  # the slash: never w1.1's for w1.10's
        if self.proc.poll() is None:
            self.proc.kill()
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m polyp_ray.launch.node", description=__doc__)
    role = parser.add_mutually_exclusive_group(required=True)
    role.add_argument("--head", action="store_true")
    role.add_argument("--address", help="the head's HOST:PORT")
    parser.add_argument("--port", type=int, default=6379, help="the head's GCS port")
    parser.add_argument("--temp-base", required=True, help="this job's temp folder; the node takes a subfolder")
    parser.add_argument("--num-cpus", type=int, required=True)
    parser.add_argument("--num-gpus", type=int, default=0)
    parser.add_argument("--object-store-memory", type=int, default=0)
    parser.add_argument("--dashboard", action="store_true")
    args = parser.parse_args(argv)
    name = "head" if args.head else f"w{os.environ.get('SLURM_STEP_ID', 'x')}.{os.environ.get('SLURM_PROCID', '0')}"
    temp_dir = Path(args.temp_base) / name
    temp_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    node = Node(ray_start_command(args, temp_dir, node_ip()), temp_dir)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, node.stop)
    code = node.proc.wait()
    stopped = node.stopping  # by a signal, or ray start ended by itself (its node died)
    node.stop()
    if not stopped:
        print(f"ray start exited with {code}; its node's processes are stopped", file=sys.stderr)
    return 0 if stopped else code or 1


if __name__ == "__main__":
    sys.exit(main())
