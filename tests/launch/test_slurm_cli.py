"""``python -m polyp_ray.slurm`` before anything reaches Slurm: a bad argument, a job that does not fit a
node, or a resume of nothing is one line and exit code 2, with no script written; a good one writes the
batch script the job runs (tests/launch/test_slurm.py runs such scripts on a real Slurm)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from polyp_ray.launch.slurm import main, seconds
from tests.conftest import REPO, write_job

KVASIR = str(REPO / "jobs" / "kvasir.yaml")


@pytest.mark.parametrize(("args", "expected"), [
    (["--nodes", "0"], "--nodes and --tasks-per-node must be >= 1"),
    (["--nodes", "two"], "argument --nodes: invalid int value: 'two'"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--job", KVASIR], "resources.gpu: each trial asks for 0.5 GPU but --gpus-per-node is 0"),
    (["--job", KVASIR, "--gpus-per-node", "2", "--cpus-per-task", "1"],
     "resources.cpu: each trial asks for 2 CPUs but a task has 1 (--cpus-per-task)"),
    (["--job", KVASIR, "--gpus-per-node", "1", "--set", "resources.gpu=2"],
     "resources.gpu: each trial asks for 2 GPUs but a node has 1 (--gpus-per-node)"),
    (["--job", KVASIR, "--gpus-per-node", "2", "--tasks-per-node", "2"], "--tasks-per-node: with GPUs keep one"),
    (["--time", "1:xx"], "--time '1:xx': not a Slurm time"),
    (["--time", "5", "--term-before", "300"], "--term-before 300: not under --time 5"),
    (["--job", KVASIR, "--set", "trial.modle=unet"], "--set: trial.modle: unknown key"),
    (["--resume", "--name", "nothing-here"], "--resume: "),
])
def test_a_bad_argument_is_one_line_and_exit_2(args: list[str], expected: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        raise SystemExit(main([*args, "--set", f"storage_path={tmp_path / 'exp'}", "--no-submit"]))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err
    assert not (tmp_path / "slurm").exists(), "a script was written"


def test_no_sbatch_here_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    job = write_job(tmp_path, "ns", tmp_path / "exp")
    assert main(["--job", str(job), "--name", "ns-run"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: sbatch not found: run this on a Slurm login node")


def test_the_script_sizes_each_node_for_the_trials_that_fill_its_gpus(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    storage = tmp_path / "exp"
    (storage / "kvasir-old").mkdir(parents=True)  # an interrupted experiment of the job, to resume
    assert main(["--job", KVASIR, "--nodes", "4", "--gpus-per-node", "2", "--time", "1-00:00:00", "--requeue",
                 "--partition", "gpu", "--sbatch-arg=--mem=64G", "--set", f"storage_path={storage}", "--resume",
                 "--no-submit"]) == 0
    script = (tmp_path / "slurm" / "kvasir-old" / "resume.sbatch").read_text()
    directives = [line.removeprefix("#SBATCH ") for line in script.splitlines() if line.startswith("#SBATCH ")]
    # 2 GPUs take 4 trials of 0.5 GPU, which ask for 2 CPUs each
    assert {"--nodes=4", "--ntasks-per-node=1", "--cpus-per-task=8", "--gres=gpu:2", "--time=1-00:00:00",
            "--signal=B:TERM@300", "--requeue", "--partition=gpu", "--mem=64G", "--export=ALL"} <= set(directives)
    [exec_line] = [line for line in script.splitlines() if line.startswith("exec ")]
    argv = shlex.split(exec_line)[1:]
    runner, search = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    assert runner[1:3] == ["-m", "polyp_ray.launch.job"] and "--gpus-per-task" in runner
    assert runner[runner.index("--grace") + 1] == "240"  # snapshot within the 300 s, a minute left to stop Ray
    assert search == ["--job", KVASIR, "--name", "kvasir-old", "--resume", "--set", f"storage_path={storage}"]


@pytest.mark.parametrize(("limit", "expected"), [("30", 1800), ("5:30", 330), ("1:00:00", 3600), ("2-0", 172800),
                                                 ("1-12:30", 131400), ("1-00:00:10", 86410)])
def test_slurm_time_limits(limit: str, expected: int) -> None:
    assert seconds(limit) == expected
