"""``python -m polyp_ray.slurm``: run a search as one Slurm batch job, from a login node.

    python -m polyp_ray.slurm --job jobs/kvasir.yaml --nodes 4 --gpus-per-node 2 --time 24:00:00 \\
        --partition gpu --set storage_path=/shared/polyp-ray/experiments
    python -m polyp_ray.slurm --job jobs/kvasir.yaml --nodes 4 --gpus-per-node 2 --time 24:00:00 \\
        --partition gpu --resume --name kvasir-20260101-120000     # after a timeout or preemption

It checks the job (and that each trial fits a node), writes ``slurm/<name>/search.sbatch`` and submits it
with sbatch. The job runs a Ray head on its first node and a worker on every further one through srun,
with token auth, then the search against them; see docs/slurm.md. ``--no-submit`` only writes the script.
"""

from __future__ import annotations

import argparse
import math
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import NoReturn

from polyp_ray.config import JobConfig, load_job_config
from polyp_ray.errors import ConfigError, run_cli
from polyp_ray.searchspace import load_searchspace
from polyp_ray.storage import locate

TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")  # Slurm's forms: M, M:S, H:M:S, D-H, D-H:M[:S]
STOP_MARGIN_S = 60  # of --term-before: what stopping the nodes may take after the search has snapshotted


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


@dataclass(frozen=True)
class Layout:
    """What each Slurm task (one Ray node) gets, checked against what each trial asks for."""

    nodes: int
    tasks_per_node: int
    cpus_per_task: int
    gpus_per_task: int

    @classmethod
    def for_job(cls, job: JobConfig, args: argparse.Namespace) -> Layout:
        gpus = args.gpus_per_node
        if args.nodes < 1 or args.tasks_per_node < 1 or gpus < 0:
            raise ConfigError("--nodes and --tasks-per-node must be >= 1, --gpus-per-node >= 0")
        if gpus and args.tasks_per_node > 1:
            raise ConfigError("--tasks-per-node: with GPUs keep one Ray node per Slurm node (Ray shares its GPUs "
                              "among the trials)")
        want = job.resources
        if want.gpu and not gpus:
            raise ConfigError(f"resources.gpu: each trial asks for {want.gpu:g} GPU but --gpus-per-node is 0 "
                              "(give --gpus-per-node, or --set resources.gpu=0)")
        if want.gpu > gpus:
            raise ConfigError(f"resources.gpu: each trial asks for {want.gpu:g} GPUs but a node has {gpus} "
                              "(--gpus-per-node)")
        trials = math.floor(gpus / want.gpu + 1e-9) if want.gpu else 1
        cpus = args.cpus_per_task or math.ceil(want.cpu) * trials
        if cpus < 1:
            raise ConfigError("--cpus-per-task must be >= 1")
        if want.cpu > cpus:
            raise ConfigError(f"resources.cpu: each trial asks for {want.cpu:g} CPUs but a task has {cpus} "
                              "(--cpus-per-task)")
        if want.gpu and math.floor(cpus / want.cpu + 1e-9) < trials:
            fit = math.floor(cpus / want.cpu + 1e-9)
            print(f"warning: {gpus} GPUs per node take {trials} trials of {want.gpu:g} GPU, but --cpus-per-task "
                  f"{cpus} fits {fit}: {gpus - fit * want.gpu:g} GPU(s) per node stay idle", file=sys.stderr)
        return cls(args.nodes, args.tasks_per_node, cpus, gpus)


def seconds(limit: str) -> int:
    """A Slurm time limit in seconds (``30`` is minutes, ``1:00:00`` an hour, ``2-0`` two days)."""
    match = TIME.match(limit)
    if not match:
        raise ConfigError(f"--time {limit!r}: not a Slurm time (minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM:SS)")
    days, first, second, third = (int(g) if g else None for g in match.groups())
    if days is not None:  # D-H, D-H:M, D-H:M:S
        return ((days * 24 + (first or 0)) * 60 + (second or 0)) * 60 + (third or 0)
    if third is not None:
        return ((first or 0) * 60 + (second or 0)) * 60 + third
    if second is not None:
        return (first or 0) * 60 + second
    return (first or 0) * 60


def experiment_name(job: JobConfig, args: argparse.Namespace) -> str:
    """Fixed at submission, so a requeued or resubmitted job finishes the same experiment."""
    store = locate(job.storage_path, job.name, args.name, args.resume, job.trial.data.resolved_cache_dir())
    if args.resume and not store.exists():
        raise ConfigError(f"--resume: {store.uri} holds no experiment to resume")
    if not args.resume and store.exists():
        raise ConfigError(f"--name: {store.uri} already exists; pass --resume to finish it, or another --name")
    return store.name


def sbatch_script(args: argparse.Namespace, layout: Layout, job_path: Path, name: str, launch_dir: Path) -> str:
    grace = max(args.term_before - STOP_MARGIN_S, args.term_before // 2)
    directives = [f"--job-name=polyp-ray-{name}", f"--nodes={layout.nodes}",
                  f"--ntasks-per-node={layout.tasks_per_node}", f"--cpus-per-task={layout.cpus_per_task}",
                  *([f"--gres=gpu:{layout.gpus_per_task}"] if layout.gpus_per_task else []),
                  *([f"--time={args.time}"] if args.time else []), f"--signal=B:TERM@{args.term_before}",
                  f"--output={launch_dir}/slurm-%j.out", "--export=ALL",
                  "--requeue" if args.requeue else "--no-requeue",
                  *(f"--{key}={value}" for key in ("partition", "account", "qos")
                    if (value := getattr(args, key))), *args.sbatch_arg]
    runner = [sys.executable, "-m", "polyp_ray.launch.job", "--launch-dir", str(launch_dir),
              "--tasks-per-node", str(layout.tasks_per_node), "--cpus-per-task", str(layout.cpus_per_task),
              "--gpus-per-task", str(layout.gpus_per_task), "--grace", str(grace),
              "--join-timeout", str(args.join_timeout), "--temp-root", args.temp_root,
              *(["--object-store-memory", str(int(args.object_store_gb * 1e9))] if args.object_store_gb else []),
              *(["--dashboard"] if args.dashboard else []),
              "--", "--job", str(job_path), "--name", name, *(["--resume"] if args.resume else []),
              *(arg for item in args.set for arg in ("--set", item))]
    return "\n".join([
        "#!/bin/bash",
        f"# A polyp-ray search on Slurm, written by: python -m polyp_ray.slurm {shlex.join(sys.argv[1:])}",
        "# Submit it again as it is: sbatch THIS FILE. After a timeout or preemption: the same",
        "# python -m polyp_ray.slurm command with --resume --name " + name + " (docs/slurm.md).",
        *(f"#SBATCH {shlex.quote(d)}" for d in directives),
        f"cd {shlex.quote(str(Path.cwd()))}",
        "exec " + shlex.join(runner), ""])


def submit(script: Path, wait: bool) -> int:
    if shutil.which("sbatch") is None:
        raise ConfigError(f"sbatch not found: run this on a Slurm login node (the script is at {script}; "
                          "--no-submit only writes it)")
    proc = subprocess.run(["sbatch", *(["--wait"] if wait else []), "--parsable", str(script)],
                          capture_output=not wait, text=True)
    if not wait and proc.returncode == 0:
        job_id = proc.stdout.strip().split(";")[0]
        print(f"submitted job {job_id}: output {script.parent}/slurm-{job_id}.out; stop it with scancel {job_id}")
    elif proc.returncode and not wait:
        raise ConfigError(f"sbatch {script}: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
    return proc.returncode


def _main(args: argparse.Namespace) -> int:
    job_path = Path(args.job).resolve() if args.job else Path(str(resources.files("polyp_ray") / "defaults" /
                                                                   "default.yaml"))
    job, space_path = load_job_config(job_path, args.set)
    load_searchspace(space_path)
    layout = Layout.for_job(job, args)
    if args.time and args.term_before >= seconds(args.time):
        raise ConfigError(f"--term-before {args.term_before}: not under --time {args.time}")
    name = experiment_name(job, args)
    launch_dir = Path(args.launch_dir or Path("slurm") / name).resolve()
    launch_dir.mkdir(parents=True, exist_ok=True)
    script = launch_dir / ("resume.sbatch" if args.resume else "search.sbatch")
    script.write_text(sbatch_script(args, layout, job_path, name, launch_dir))
    print(f"experiment {name}: {layout.nodes} node(s) x {layout.tasks_per_node} Ray node(s), "
          f"{layout.cpus_per_task} CPUs and {layout.gpus_per_task} GPUs each; script {script}")
    if args.no_submit:
        return 0
    return submit(script, args.wait)


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m polyp_ray.slurm", description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--job", help="job YAML (default: the embedded synthetic-data job)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="job override, as for the search")
    p.add_argument("--name", help="experiment name (default: <job name>-<timestamp>; with --resume: the latest)")
    p.add_argument("--resume", action="store_true", help="finish an interrupted experiment of this job")
    p.add_argument("--nodes", type=int, default=1, help="Slurm nodes: one Ray node each (default 1)")
    p.add_argument("--tasks-per-node", type=int, default=1, help="Ray nodes per Slurm node (CPU-only; default 1)")
    p.add_argument("--gpus-per-node", type=int, default=0, help="GPUs of each node (--gres=gpu:N)")
    p.add_argument("--cpus-per-task", type=int, default=0,
                   help="CPUs of each Ray node (default: what the trials that fit its GPUs ask for)")
    p.add_argument("--time", help="time limit (Slurm's forms: 30, 4:00:00, 1-12:00:00)")
    p.add_argument("--term-before", type=int, default=300, metavar="S",
                   help="SIGTERM the job S seconds before its time limit so the search snapshots (default 300)")
    p.add_argument("--requeue", action="store_true", help="let Slurm requeue the job after preemption; it resumes")
    p.add_argument("--partition")
    p.add_argument("--account")
    p.add_argument("--qos")
    p.add_argument("--sbatch-arg", action="append", default=[], metavar="ARG",
                   help="any other sbatch option, e.g. --sbatch-arg=--mem=64G; repeatable")
    p.add_argument("--launch-dir", help="where the script, the output and the job's token go (default slurm/<name>)")
    p.add_argument("--temp-root", default="/tmp", help="node-local folder for Ray's per-job temp dir (default /tmp)")
    p.add_argument("--object-store-gb", type=float, default=0.0, help="Ray's object store per node (default: Ray's)")
    p.add_argument("--join-timeout", type=float, default=600.0, help="seconds to wait for every node (default 600)")
    p.add_argument("--dashboard", action="store_true", help="the Ray dashboard on the head's 127.0.0.1")
    p.add_argument("--no-submit", action="store_true", help="write the script, do not submit it")
    p.add_argument("--wait", action="store_true", help="wait for the job to end (sbatch --wait)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run_cli(lambda: _main(args))


if __name__ == "__main__":
    sys.exit(main())
