"""``python -m polyp_ray.predict``: masks at each image's original size, from a checkpoint or an experiment's
best model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from polyp_ray.predict import full_size_mask, main, overlay
from tests.conftest import write_pair
from tests.console import tf_cpp_lines


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained 32-pixel U-Net: predict only needs the shapes right, not good masks."""
    from polyp_ray.models import build_model

    path = tmp_path_factory.mktemp("model") / "unet32.keras"
    build_model("unet", 32, 4).save(path)
    return path


def _sizes(folder: Path, suffix: str) -> dict[str, tuple[int, int]]:
    return {p.name[: -len(suffix)]: Image.open(p).size for p in sorted(folder.glob(f"*{suffix}"))}


def test_kvasir_images_get_masks_of_their_original_size(kvasir: Path, checkpoint: Path,
                                                        tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for source in sorted((kvasir / "images").iterdir())[:5]:
        os.symlink(source, images / source.name)
    out = tmp_path / "out"
    assert main(["--model", str(checkpoint), "--images", str(images), "--out", str(out)]) == 0
    originals = {p.stem: Image.open(p).size for p in images.iterdir()}
    assert _sizes(out, "_mask.png") == originals == _sizes(out, "_overlay.png")
    assert len(originals) == 5 and len(set(originals.values())) > 1  # Kvasir's sizes vary
    for mask in out.glob("*_mask.png"):
        assert set(np.unique(np.asarray(Image.open(mask)))) <= {0, 255}


def test_experiment_mode_uses_the_trials_size_and_threshold(checkpoint: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    best = tmp_path / "exp" / "polyp_ray" / "best"
    best.mkdir(parents=True)
    (best / "model.keras").write_bytes(checkpoint.read_bytes())
    (best / "trial_config.json").write_text(json.dumps({"image_size": 32, "threshold": 0.3}))
    write_pair(tmp_path, "images", "masks", "odd", size=(45, 29))
    out = tmp_path / "out"
    args = ["--experiment", str(tmp_path / "exp"), "--images", str(tmp_path / "images"), "--out", str(out)]
    assert main(args) == 0
    assert Image.open(out / "odd_mask.png").size == (45, 29)
    assert "threshold 0.3" in capsys.readouterr().out


def test_an_unreadable_image_is_named_and_the_others_are_written(checkpoint: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    write_pair(tmp_path, "images", "masks", "good")
    images = tmp_path / "images"
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (images / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")  # a broken symbolic link
    (images / "folder.png").mkdir()  # a folder named like an image
    (images / "empty.png").write_bytes(b"")
    (images / "notes.txt").write_text("not an image name: not listed")
    out = tmp_path / "out"
    assert main(["--model", str(checkpoint), "--images", str(images), "--out", str(out)]) == 2
    errors = sorted(line for line in capsys.readouterr().err.splitlines() if line.startswith("error:"))
    assert len(errors) == 4, errors
    assert "broken.png: unreadable or truncated image" in errors[0]
    assert errors[1].endswith("empty.png: empty file (0 bytes)")
    assert errors[2].endswith("folder.png: a folder, not an image file")
    assert errors[3].endswith(f"gone.jpg: broken symbolic link (points to {tmp_path / 'nowhere.jpg'})")
    assert (out / "good_mask.png").is_file() and not (out / "broken_mask.png").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--model", "missing.keras"], "missing.keras: model file not found"),
    (["--experiment", "no-experiment"], "trial_config.json: not found"),
    (["--model", "x.keras", "--threshold", "1.5"], "--threshold 1.5: must be in (0, 1)"),
])
def test_bad_arguments_are_one_line_errors(args: list[str], message: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_pair(tmp_path, "images", "masks", "a")
    assert main([*args, "--images", "images", "--out", "out"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_images_folder_problems(tmp_path: Path, capsys: pytest.CaptureFixture,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    assert main(["--model", "m.keras", "--images", "empty", "--out", "out"]) == 2
    assert "empty: no images" in capsys.readouterr().err
    write_pair(tmp_path, "images", "masks", "same", suffix=".png")
    write_pair(tmp_path, "images", "masks", "same", suffix=".jpg")
    assert main(["--model", "m.keras", "--images", "images", "--out", "out"]) == 2
    assert "two files share the stem 'same'" in capsys.readouterr().err
    (tmp_path / "images" / "same.jpg").unlink()
    assert main(["--model", "m.keras", "--images", "images", "--out", "images"]) == 2
    assert "must differ from --images" in capsys.readouterr().err


def test_probabilities_are_resized_before_thresholding() -> None:
    prob = np.array([[0.0, 1.0], [0.0, 1.0]], dtype=np.float32)
    mask = full_size_mask(prob, (3, 8), threshold=0.5)
    assert mask.shape == (3, 8) and mask.dtype == np.uint8
    assert (mask[:, :4] == 0).all() and (mask[:, 4:] == 255).all()  # the 0.5 crossing lands mid-image


def test_overlay_tints_only_the_mask() -> None:
    image = np.full((10, 10, 3), 100, dtype=np.uint8)
    mask = np.zeros((10, 10), dtype=bool)
    mask[2:8, 2:8] = True
    out = overlay(image, mask)
    assert (out[~mask] == 100).all() and (out[mask][:, 1] > 100).all()


@pytest.mark.parametrize("model", ["unet", "vgg16_unet", "encoder_decoder"])
def test_predict_loads_each_family_in_a_fresh_process(model: str, tmp_path: Path) -> None:
    # A fresh process has imported nothing that registers our custom layers (VGG16's preprocessing).
    import subprocess
    import sys

    from polyp_ray.models import build_model

    path = tmp_path / f"{model}.keras"
    build_model(model, 32, 4).save(path)
    write_pair(tmp_path, "images", "masks", "frame", size=(50, 30))
    verbose = ["-v"] if model == "vgg16_unet" else []  # -v shows TensorFlow's C++ start-up lines
    proc = subprocess.run([sys.executable, "-m", "polyp_ray.predict", "--model", str(path), *verbose,
                           "--images", str(tmp_path / "images"), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert Image.open(tmp_path / "out" / "frame_mask.png").size == (50, 30)
    console = tf_cpp_lines(proc.stdout + proc.stderr)
    assert bool(console) == bool(verbose), console  # quiet on a CPU machine unless asked
