"""A one-node Slurm cluster on 127.0.0.1 for the tests: munged (as the ``munge`` user), slurmctld and slurmd
in the foreground, started from a generated slurm.conf and stopped again by process id.

No cgroups are needed: ``proctrack/linuxproc`` tracks a step's processes by their parents,
``task/none`` binds nothing, and ``jobacct_gather/none`` gathers nothing. The node is this machine with
its own CPU count; jobs run as the user who submits them (root: slurmd and munged need it here)."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.ray_nodes import free_port

MUNGE_DIRS = ("/run/munge", "/var/log/munge", "/var/lib/munge", "/etc/munge")
MUNGE_KEY = Path("/etc/munge/munge.key")
DAEMONS = ("munged", "slurmctld", "slurmd")


def missing() -> str | None:
    """Why this machine cannot run the cluster, or None."""
    absent = [name for name in (*DAEMONS, "sbatch", "srun", "scancel", "scontrol") if shutil.which(name) is None]
    if absent:
        return f"not installed: {', '.join(absent)} (apt-get install slurm-wlm munge; the README's test command does)"
    if os.geteuid() != 0:
        return "slurmd and munged need root here"
    try:
        pwd.getpwnam("munge")
    except KeyError:
        return "no munge user (the munge package makes it)"
    return None


class SlurmCluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.node = socket.gethostname().split(".")[0]
        self.conf = root / "slurm.conf"
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def start(self) -> None:
        self._start_munged()
        self._write_conf()
        self._daemon("slurmctld", ["slurmctld", "-D", "-i", "-f", str(self.conf)])
        self._daemon("slurmd", ["slurmd", "-D", "-f", str(self.conf), "-N", self.node])
        self._wait_idle()

    def stop(self) -> None:
        for name in reversed(list(self.procs)):
            proc = self.procs.pop(name)
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), env=self.env, capture_output=True, text=True, timeout=timeout)

    def job_state(self, job_id: str) -> str:
        out = self.run("scontrol", "-o", "show", "job", job_id).stdout
        fields = dict(item.split("=", 1) for item in out.split() if "=" in item)
        return fields.get("JobState", "UNKNOWN")

    def wait_job(self, job_id: str, timeout: float, states: tuple[str, ...] = ("COMPLETED", "FAILED", "CANCELLED",
                                                                              "TIMEOUT", "NODE_FAIL")) -> str:
        deadline = time.monotonic() + timeout
        while (state := self.job_state(job_id)) not in states:
            assert time.monotonic() < deadline, f"job {job_id} still {state} after {timeout:.0f} s"
            self.check_alive()
            time.sleep(0.5)
        return state

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            assert proc.poll() is None, f"{name} exited: " + self.log(name)[-2000:]

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _start_munged(self) -> None:
        munge = pwd.getpwnam("munge")
        for folder in MUNGE_DIRS:
            Path(folder).mkdir(parents=True, exist_ok=True)
            os.chown(folder, munge.pw_uid, munge.pw_gid)
        if not MUNGE_KEY.exists():
            subprocess.run(["runuser", "-u", "munge", "--", "mungekey", "--create", f"--keyfile={MUNGE_KEY}"],
                           check=True, capture_output=True)
        self.munge_socket = self.root / "munge" / "munge.socket"
        (self.root / "munge").mkdir()
        os.chown(self.root / "munge", munge.pw_uid, munge.pw_gid)
        self._daemon("munged", ["runuser", "-u", "munge", "--", "munged", "--foreground", "--force",
                                f"--socket={self.munge_socket}", f"--pid-file={self.root / 'munge' / 'munged.pid'}",
                                f"--log-file={self.root / 'munge' / 'munged.log'}",
                                f"--seed-file={self.root / 'munge' / 'munged.seed'}"])
        deadline = time.monotonic() + 20
        while not self.munge_socket.exists():
            self.check_alive()
            assert time.monotonic() < deadline, "munged never opened its socket"
            time.sleep(0.1)

    def _write_conf(self) -> None:
        (self.root / "state").mkdir()
        (self.root / "spool").mkdir()
        cpus = os.cpu_count() or 1
        self.conf.write_text(f"""\
ClusterName=polyptest
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
SlurmUser=root
SlurmdUser=root
StateSaveLocation={self.root / 'state'}
SlurmdSpoolDir={self.root / 'spool'}
SlurmctldPidFile={self.root / 'slurmctld.pid'}
SlurmdPidFile={self.root / 'slurmd.pid'}
SlurmctldLogFile={self.root / 'slurmctld.log'}
SlurmdLogFile={self.root / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
KillWait=30
MinJobAge=600
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
""")

    def _daemon(self, name: str, command: list[str]) -> None:
        with (self.root / f"{name}.out").open("w") as sink:
            self.procs[name] = subprocess.Popen(command, env=self.env, stdout=sink, stderr=subprocess.STDOUT,
                                                start_new_session=True)

    def _wait_idle(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            out = self.run("sinfo", "-h", "-N", "-o", "%t").stdout.split()
            if out and all(state.rstrip("*") in ("idle", "mix", "alloc") for state in out):
                return
            self.check_alive()
            assert time.monotonic() < deadline, f"node never idle ({out}): " + self.log("slurmctld")[-2000:]
            time.sleep(0.3)
