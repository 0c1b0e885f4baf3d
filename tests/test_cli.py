"""The command line as a user meets it: the debug trial, and one-line errors with exit code 2."""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import DEAD_CLUSTER, console_of
from tests.console import tf_cpp_lines

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "polyp_ray.search", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_debug_trial_prints_epochs_and_writes_artifacts(tmp_path: Path) -> None:
    # Also: a debug run has no ASHA, so it runs its 2 epochs whatever the job's grace period (3 here, which
    # a search would refuse as more than trial.epochs); it samples nothing, so its job needs no
    # searchspace: key (and no space file); and its console holds no TensorFlow C++ start-up line.
    out = tmp_path / "debug"
    (tmp_path / "job.yaml").write_text("name: d\ndata: {path: synthetic}\ntrial: {model: unet}\n")
    proc = run_cli("--job", "job.yaml", "--debug", "--set", "image_size=32", "--set", "base_width=4",
                   "--set", "epochs=2", "--set", "grace_period=3", "--set", "data.synthetic_count=24",
                   "--set", f"output_dir={out}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert tf_cpp_lines(proc.stdout + proc.stderr) == []
    epoch_lines = [line for line in proc.stdout.splitlines() if line.startswith("epoch")]
    assert len(epoch_lines) == 2 and all("val_dice" in line and " s " in line for line in epoch_lines)
    assert (out / "best.keras").stat().st_size > 0
    metrics = json.loads((out / "test_metrics.json").read_text())
    assert metrics["summary"]["n_images"] == len(metrics["per_image"]) > 0
    assert list((out / "predictions").glob("*.png"))
    assert [h["epoch"] for h in json.loads((out / "history.json").read_text())] == [1, 2]
    refused = run_cli("--set", "epochs=2", "--set", "grace_period=3", "--set", f"storage_path={tmp_path / 'exp'}",
                      cwd=tmp_path, timeout=120)
    assert refused.returncode == 2 and "grace_period: must be in [1, trial.epochs]" in refused.stderr


@pytest.mark.parametrize(
    ("job", "space", "expected"),
    [
        ("trial: {epochs: 0}\n", None, "job.yaml: trial.epochs: must be >= 1"),
        ("max_epochs: 4\n", None, "job.yaml: max_epochs: renamed: set trial.epochs"),
        ("trial: {modle: unet}\n", None, "job.yaml: trial.modle: unknown key"),
        ("data: {path: /nonexistent/data}\n", None, "/nonexistent/data: dataset folder not found"),
        ("", "learning_rate: {low: 1, high: 0.1}\n", "space.yaml: learning_rate.low: must be below high"),
        ("", "model: {choices: [unet, transformer]}\n", "space.yaml: model: 'transformer': unknown model"),
        ("points_to_evaluate: [{model: resnet}]\n", None, "job.yaml: points_to_evaluate: model: 'resnet' not in"),
    ],
)
def test_bad_files_give_one_line_and_exit_2_and_keep_earlier_results(tmp_path: Path, job: str, space: str | None,
                                                                       expected: str) -> None:
    (tmp_path / "space.yaml").write_text(space or "model: {choices: [unet]}\n")
    (tmp_path / "job.yaml").write_text(f"name: keep\nsearchspace: space.yaml\nstorage_path: {tmp_path / 'exp'}\n" + job)
    earlier = tmp_path / "exp" / "keep-1" / "result.json"
    earlier.parent.mkdir(parents=True)
    earlier.write_text('{"epoch": 1}\n')
    proc = run_cli("--job", str(tmp_path / "job.yaml"), "--name", "keep-1", cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert expected in lines[0]
    assert earlier.read_text() == '{"epoch": 1}\n'
    assert sorted(p.name for p in (tmp_path / "exp").iterdir()) == ["keep-1"]


def test_an_existing_experiment_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "exp" / "default-x").mkdir(parents=True)
    proc = run_cli("--set", f"storage_path={tmp_path / 'exp'}", "--name", "default-x", cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert "already exists; pass --resume" in proc.stderr


def test_missing_imagenet_weights_stop_the_search_before_any_trial(tmp_path: Path) -> None:
    (tmp_path / "space.yaml").write_text("model: {choices: [unet, vgg16_unet]}\n")
    (tmp_path / "job.yaml").write_text(f"name: w\nsearchspace: space.yaml\nstorage_path: {tmp_path / 'exp'}\n"
                                       "trial: {encoder_weights: imagenet}\n")
    env_home = {"KERAS_HOME": str(tmp_path / "keras"), "POLYP_RAY_MIRROR": "http://127.0.0.1:1"}
    proc = subprocess.run([sys.executable, "-m", "polyp_ray.search", "--job", str(tmp_path / "job.yaml")],
                          cwd=tmp_path, env={**os.environ, **env_home}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert "job.yaml: trial.encoder_weights: imagenet: vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in line
    assert "encoder_weights: none" in line and "\n" not in line
    assert not (tmp_path / "exp").exists()


def test_a_local_search_asking_for_a_gpu_this_machine_lacks_stops_at_once(tmp_path: Path) -> None:
    proc = run_cli("--set", f"storage_path={tmp_path / 'exp'}", "--set", "resources.gpu=1", "--name", "gpu",
                   cwd=tmp_path, timeout=300)
    assert proc.returncode == 2
    assert "resources.gpu: each trial asks for 1 GPU but this machine has 0" in proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(("override", "expected"), [
    ("image_size=100", "--set: image_size: must be a multiple of 32"),
    ("trial.modle=unet", "--set: trial.modle: unknown key"),
    ("data.val_fraction=0", "--set: data.val_fraction: must be in (0, 1)"),
])
def test_a_bad_override_names_set_not_the_job_file(tmp_path: Path, override: str, expected: str) -> None:
    proc = run_cli("--set", override, "--set", f"storage_path={tmp_path / 'exp'}", cwd=tmp_path, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    line = proc.stderr.strip()
    assert line.startswith(f"error: {expected}") and "default.yaml" not in line, line
    assert not (tmp_path / "exp").exists()


def test_a_debug_run_that_fails_on_its_data_leaves_no_folder(tmp_path: Path) -> None:
    (tmp_path / "data" / "images").mkdir(parents=True)
    (tmp_path / "data" / "masks").mkdir()
    (tmp_path / "data" / "images" / "a.png").write_bytes(b"not a png")
    proc = run_cli("--debug", "--set", f"data.path={tmp_path / 'data'}", "--set", f"output_dir={tmp_path / 'run'}",
                   cwd=tmp_path, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("address", ["127.0.0.1:9", "auto"])
def test_an_unreachable_address_fails_fast_in_one_line(tmp_path: Path, address: str) -> None:
    ray_tmp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))
    (ray_tmp / "ray").mkdir()
    (ray_tmp / "ray" / "ray_current_cluster").write_text("127.0.0.1:9\n")  # a cluster that died long ago
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp)}
    env.pop("RAY_ADDRESS", None)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "polyp_ray.search", "--address", address,
                           "--set", f"storage_path={tmp_path / 'exp'}"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"--address {address}: no Ray cluster answers at 127.0.0.1:9" in lines[0]
    assert time.monotonic() - started < 120
    assert not (tmp_path / "exp").exists()


@pytest.mark.slow
def test_without_address_a_search_starts_its_own_ray_despite_a_dead_cluster(tiny_experiment: Path) -> None:
    # The shared tiny search ran with RAY_TMPDIR holding a stale ray_current_cluster (tests/conftest.py).
    folder = tiny_experiment.parent.parent
    ray_tmp = Path((folder / "ray_tmpdir.txt").read_text())
    assert (ray_tmp / "ray" / "ray_current_cluster").read_text() == DEAD_CLUSTER
    assert list((ray_tmp / "ray").glob("session_2*")), "the search's Ray did not run under that RAY_TMPDIR"
    console = console_of(tiny_experiment)
    assert "Started a local Ray instance" in console and "Connecting to existing Ray cluster" not in console
    assert (tiny_experiment / "polyp_ray" / "trials.csv").exists()


@pytest.mark.parametrize("module", ["polyp_ray.search", "polyp_ray.predict", "polyp_ray.export", "polyp_ray.report"])
def test_help_shows_no_raw_rst_backticks(module: str, capsys: pytest.CaptureFixture) -> None:
    import importlib

    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    shown = capsys.readouterr().out
    assert done.value.code == 0 and "python -m polyp_ray" in shown and "``" not in shown


def test_a_batch_larger_than_the_training_split_is_refused_before_any_decode_cache(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from polyp_ray.search import main

    cache = tmp_path / "cache"
    (tmp_path / "job.yaml").write_text(f"name: b\ndata: {{path: synthetic, synthetic_count: 12, cache_dir: {cache}}}\n")
    assert main(["--job", str(tmp_path / "job.yaml"), "--debug", "--set", "batch_size=16",
                 "--set", f"output_dir={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err
    assert "trial.batch_size: 16 is larger than the training split (8 images)" in err and err.count("\n") == 1
    assert not (cache / "decoded").exists() and not (tmp_path / "run").exists()
