"""The batch step of a Slurm job that ``python -m polyp_ray.slurm`` wrote: ``python -m polyp_ray.launch.job
[options] -- SEARCH ARGUMENTS``.

1. A fresh token in a file only the user can read (its folder 0700, on the shared filesystem where the
   workers read it too), and a private Ray temp dir per job on every node.
2. The Ray head here, on the job's first node (``launch.node --head``); once its port answers, one worker
   per further task through ``srun`` (one step per node, so a worker never lands beside the head by
   chance).
3. ``python -m polyp_ray.search --address HEAD --min-nodes N ...``: it waits until every node has joined.
4. SIGTERM (Slurm's ``--signal=B:TERM@S`` before the time limit, ``scancel``) goes on to the search, which
   snapshots; after the search, or ``grace`` seconds at most, every Ray process of the job is stopped
   (the workers' steps, then the head, then anything left that names the job's temp dir), the token is
   deleted, and the step exits with the search's code.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from polyp_ray.launch.processes import free_port, node_ip, send, stop_marked, wait_for_port

NODE = [sys.executable, "-m", "polyp_ray.launch.node"]
STEP_STOP_S = 10.0
HEADLESS_GRACE_S = 5.0


def hosts_of_job() -> list[str]:
    listed = subprocess.run(["scontrol", "show", "hostnames", os.environ["SLURM_JOB_NODELIST"]],
                            capture_output=True, text=True, check=True).stdout.split()
    return listed or [os.environ["SLURMD_NODENAME"]]


def write_token(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    path = folder / "auth_token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as sink:
        sink.write(secrets.token_hex(32))
    path.chmod(0o600)  # O_CREAT's mode does not apply to a file that was there
    return path


class Job:
    def __init__(self, args: argparse.Namespace, search_args: list[str]) -> None:
        self.args = args
        self.search_args = search_args
        self.job_id = os.environ["SLURM_JOB_ID"]
        self.folder = Path(args.launch_dir).resolve() / f"job-{self.job_id}"
        self.temp_base = Path(args.temp_root) / f"polyp-ray-{self.job_id}"
        self.steps: list[subprocess.Popen] = []
        self.head: subprocess.Popen | None = None
        self.driver: subprocess.Popen | None = None
        self.terminated_at: float | None = None

    def run(self) -> int:
        token = write_token(self.folder)
        env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
               "POLYP_RAY_JOIN_TIMEOUT_S": str(self.args.join_timeout)}
        env.pop("RAY_AUTH_TOKEN", None)
        env.pop("RAY_ADDRESS", None)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        try:
            return self._run(env)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)  # the token first: nothing needs it any more
            self.stop_nodes()

    def _run(self, env: dict[str, str]) -> int:
        hosts = hosts_of_job()
        ip, port = node_ip(), free_port()
        address = f"{ip}:{port}"
        node = ["--temp-base", str(self.temp_base), "--num-cpus", str(self.args.cpus_per_task),
                "--num-gpus", str(self.args.gpus_per_task), "--object-store-memory", str(self.args.object_store_memory)]
        self.head = subprocess.Popen([*NODE, "--head", f"--port={port}", *node,
                                      *(["--dashboard"] if self.args.dashboard else [])], env=env)
        if not wait_for_port(ip, port, self.args.join_timeout, lambda: self._alive(self.head)):
            print(f"error: the Ray head on {hosts[0]} never answered at {address}", file=sys.stderr, flush=True)
            return 1
        print(f"ray head at {address} on {hosts[0]} (temp dir {self.temp_base}/head)", flush=True)
        total = len(hosts) * self.args.tasks_per_node
        for index, host in enumerate(hosts):
            count = self.args.tasks_per_node - (index == 0)  # the head is the first node's first task
            if count:
                gres = [f"--gres=gpu:{self.args.gpus_per_task}"] if self.args.gpus_per_task else []
                self.steps.append(subprocess.Popen(
                    ["srun", "--nodes=1", f"--ntasks={count}", f"--nodelist={host}",
                     f"--cpus-per-task={self.args.cpus_per_task}", *gres, "--kill-on-bad-exit=0",
                     *NODE, f"--address={address}", *node], env=env))
                print(f"ray workers: {count} on {host} through srun", flush=True)
        resume = ["--resume"] if os.environ.get("SLURM_RESTART_COUNT", "0") not in ("", "0") and \
            "--resume" not in self.search_args else []  # a requeued job finishes its own experiment
        command = [sys.executable, "-m", "polyp_ray.search", "--address", address, "--min-nodes", str(total),
                   *resume, *self.search_args]
        print("search: " + " ".join(command), flush=True)
        self.driver = subprocess.Popen(command, env=env)
        while True:
            try:
                code = self.driver.wait(timeout=1)
                break
            except subprocess.TimeoutExpired:
                if self.terminated_at is None:
                    continue
                # scancel stopped the nodes too: the search cannot snapshot any more, nothing to wait for
                grace = self.args.grace if self._alive(self.head) else HEADLESS_GRACE_S
                if time.monotonic() - self.terminated_at > grace:
                    print(f"the search did not end {grace:.0f} s after SIGTERM: killing it", flush=True)
                    self.driver.kill()
        print(f"search exited with {code}", flush=True)
        return code

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.terminated_at is None:
            self.terminated_at = time.monotonic()
            print(f"{signal.Signals(signum).name}: the search snapshots, then the job's Ray stops", flush=True)
            if self.driver is None:
                raise SystemExit(128 + signum)  # no search yet: straight to stopping the nodes
            send(self.driver.pid, signal.SIGTERM)

    @staticmethod
    def _alive(proc: subprocess.Popen | None) -> bool:
        return proc is not None and proc.poll() is None

    def stop_nodes(self) -> None:
        """Workers first (srun passes SIGTERM to its tasks), the head last, as ``ray stop`` orders it."""
        for proc in [*self.steps, self.head]:
            if self._alive(proc):
                assert proc is not None
                proc.terminate()
        for proc in [*self.steps, self.head]:
            if proc is not None:
                try:
                    proc.wait(timeout=STEP_STOP_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
        left = stop_marked(f"{self.temp_base}/")
        shutil.rmtree(self.temp_base, ignore_errors=True)
        print("ray stopped" + (f" ({left} process(es) needed SIGKILL)" if left else ""), flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(prog="python -m polyp_ray.launch.job", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--launch-dir", required=True)
    parser.add_argument("--tasks-per-node", type=int, default=1)
    parser.add_argument("--cpus-per-task", type=int, required=True)
    parser.add_argument("--gpus-per-task", type=int, default=0)
    parser.add_argument("--object-store-memory", type=int, default=0)
    parser.add_argument("--grace", type=float, default=240.0, help="seconds the search may take to snapshot")
    parser.add_argument("--join-timeout", type=float, default=600.0)
    parser.add_argument("--temp-root", default="/tmp", help="a short local path: Ray's sockets live under it")
    parser.add_argument("--dashboard", action="store_true")
    args = parser.parse_args(argv[:split])
    if "SLURM_JOB_ID" not in os.environ:
        print("error: python -m polyp_ray.launch.job runs inside a Slurm job (sbatch); "
              "submit with python -m polyp_ray.slurm", file=sys.stderr)
        return 2
    return Job(args, argv[split + 1:]).run()


if __name__ == "__main__":
    sys.exit(main())
