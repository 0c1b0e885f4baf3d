"""Real searches on a local Ray: ASHA, the experiment folder, resuming a killed driver, surviving a
killed trial process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from tests.conftest import console_of, search_command, write_job

pytestmark = pytest.mark.slow


def _results(trial_dir: Path) -> list[dict]:
    path = trial_dir / "result.json"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _trial_dirs(exp: Path) -> list[Path]:
    return sorted(p for p in exp.iterdir() if p.is_dir() and p.name.startswith("tune_trial_"))


def test_search_writes_every_trial_and_asha_stops_some(tiny_experiment: Path) -> None:
    trials = _trial_dirs(tiny_experiment)
    assert len(trials) == 6
    for trial in trials:
        rows = _results(trial)
        assert [r["epoch"] for r in rows] == list(range(1, len(rows) + 1))
        assert {"val_dice", "val_iou", "val_miou_2class", "epoch_s", "train_images_per_s", "cpu", "gpu"} <= set(rows[0])
    table = pd.read_csv(tiny_experiment / "polyp_ray" / "trials.csv", dtype={"trial_id": str})
    assert len(table) == 6 and set(table["status"]) == {"TERMINATED"}
    assert table["stopped_early"].any(), "ASHA stopped no trial"
    # ASHA (grace 1, reduction factor 2, 4 epochs) stops trials only at its rungs, epochs 1 and 2.
    assert set(table.loc[table["stopped_early"], "epochs_run"]) <= {1, 2}
    assert (table.loc[~table["stopped_early"], "epochs_run"] == 4).all()
    # Every family reached the test split, the VGG16 one too (its layers load in the scoring workers).
    assert set(table["model"]) == {"unet", "encoder_decoder", "vgg16_unet"}
    assert "mobilenetv2" in set(table["encoder"])  # the space samples encoders too
    assert table["test_dice"].notna().all()
    assert "test_error" not in table or table["test_error"].isna().all()
    # One rule: a trial's score is its best epoch, the number TPE was told and the checkpoint tested.
    for trial in trials:
        rows = _results(trial)
        row = table[table["trial_id"] == rows[-1]["trial_id"]].iloc[0]
        assert rows[-1]["best_val_dice"] == max(r["val_dice"] for r in rows) == row["best_val_dice"]
    assert (table["wall_s"] > 0).all() and (table["cpu_hours"] > 0).all()
    # A finished trial's process takes the next trial (6 trials on 2 slots): no new process, no new import.
    assert len({_results(trial)[0]["pid"] for trial in trials}) < 6
    for trial_id in table["trial_id"]:
        test = json.loads((tiny_experiment / "polyp_ray" / "trials" / trial_id / "test_metrics.json").read_text())
        assert test["summary"]["n_images"] == 12 == len(test["per_image"])
    ours = tiny_experiment / "polyp_ray"
    for name in ("job.yaml", "searchspace.yaml", "command.txt", "dataset.json", "environment.json",
                 "best/model.keras", "best/trial_config.json"):
        assert (ours / name).exists(), name
    assert json.loads((ours / "dataset.json").read_text())["n_pairs"] == 48


def test_the_console_shows_the_search_not_tensorflows_start_up(tiny_experiment: Path) -> None:
    console = console_of(tiny_experiment)
    assert "Trial status" in console and "report: " in console  # Tune's progress table, where the report is
    for line in ("cuInit", "oneDNN custom operations", "cudart_stub", "absl::InitializeLog"):
        assert line not in console, f"TensorFlow's start-up line on the console: {line}"
    # Each trial's own output is kept in its folder instead.
    assert all((trial / "stderr").is_file() for trial in _trial_dirs(tiny_experiment))


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(search_command(*args), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def _wait_for(predicate, proc: subprocess.Popen, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            pytest.fail(f"search ended before {what}: {proc.stdout.read()[-3000:] if proc.stdout else ''}")
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


def _kill_session(proc: subprocess.Popen) -> None:
    """SIGKILL the driver and everything in its session (the local Ray it started)."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _session_pids(proc.pid):
        time.sleep(0.5)
    for pid in _session_pids(proc.pid):
        os.kill(pid, signal.SIGKILL)


def _session_pids(sid: int) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid=,sid="], capture_output=True, text=True).stdout
    return [int(p) for p, s in (line.split() for line in out.splitlines()) if int(s) == sid]


def test_a_killed_trial_and_a_killed_driver_each_resume_from_what_was_saved(tmp_path: Path) -> None:
    # One search for both failures (each search costs the suite a Ray start and the scoring after). Storage
    # given as a URI (file://, as s3:// would be on a cluster): Tune writes there directly and our summary
    # is uploaded beside it. One trial at a time: the first is done and the second started at the kill.
    job = write_job(tmp_path, "resume", f"file://{tmp_path / 'exp'}", num_samples=2, epochs=5, grace_period=5,
                    max_concurrent=1, max_failures=2, ensemble_k=1, tta=False, data={"synthetic_count": 96},
                    space="model: {choices: [unet]}\nbase_width: {choices: [4]}\nimage_size: {choices: [64]}\n"
                          "learning_rate: {low: 1.0e-3, high: 1.0e-2, log: true}\n")
    exp = tmp_path / "exp" / "resume-run"
    proc = _start(["--job", str(job), "--name", "resume-run", "--no-report"], tmp_path)

    # The first trial's process is SIGKILLed after its first epoch: Tune restarts it from its checkpoint.
    def first_epoch_reported() -> bool:
        return exp.exists() and any(_results(t) for t in _trial_dirs(exp))

    _wait_for(first_epoch_reported, proc, 600, "a first epoch")
    victim = next(t for t in _trial_dirs(exp) if _results(t))
    os.kill(int(_results(victim)[-1]["pid"]), signal.SIGKILL)

    # Then the driver, with its local Ray, once the first trial is done and the second started.
    def one_done_one_started() -> bool:
        done = [t for t in _trial_dirs(exp) if any(r.get("done") for r in _results(t))]
        return len(done) >= 1 and len(_trial_dirs(exp)) >= 2

    _wait_for(one_done_one_started, proc, 600, "one finished trial")
    finished = {t.name: (t / "result.json").read_text() for t in _trial_dirs(exp)
                if any(r.get("done") for r in _results(t))}
    assert victim.name in finished
    rows = _results(victim)
    epochs = [r["epoch"] for r in rows]
    # A restart from scratch would report epoch 1 again. (The row of the epoch in flight at the kill
    # can be lost with the process, while its checkpoint, written first, survives.)
    assert epochs == sorted(set(epochs)) and epochs[-1] == 5, f"epochs reported {epochs}"
    restarted = [r for r in rows if r["pid"] != rows[0]["pid"]]
    assert restarted, "the trial was not restarted in a new process"
    assert restarted[0]["epoch"] > 1, "the restarted trial began again at epoch 1"
    _kill_session(proc)

    resumed = subprocess.run(search_command("--job", str(job), "--resume", "--no-report"),  # the job's latest run
                             cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    for name, before in finished.items():
        assert (exp / name / "result.json").read_text() == before, f"{name} was run again"
    table = pd.read_csv(exp / "polyp_ray" / "trials.csv")
    assert len(table) == 2 and set(table["status"]) == {"TERMINATED"}
    assert (table["epochs_run"] == 5).all()
    # (A trial the killed driver started after Tune's last snapshot of the experiment is not resumed:
    # its folder may stay, unrecorded, beside the two the table lists.)
    assert {Path(d).name for d in table["trial_dir"]} <= {t.name for t in _trial_dirs(exp)}
    assert set(finished) <= {Path(d).name for d in table["trial_dir"]}
    # Optuna's study (SQLite, in the experiment) survived the kill: one finished trial per Tune trial,
    # the resumed ones included, with the scores of the table, and nothing left running.
    study = optuna.load_study(study_name="resume-run", storage=f"sqlite:///{exp / 'polyp_ray' / 'optuna.db'}")
    completed = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(completed) == 2
    assert sorted(t.value for t in completed) == pytest.approx(sorted(table["best_val_dice"]))
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
