"""Before any trial: the weight files every encoder the space can sample needs (polyp_ray/pretrained.py),
fetched by the search CLI, which stops offline with one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from polyp_ray.models.encoders import ENCODERS
from polyp_ray.pretrained import needed_weights

VGG16 = ENCODERS["vgg16"].weights
assert VGG16 is not None


def test_needed_weights_cover_every_encoder_the_space_can_sample(tmp_path: Path) -> None:
    from polyp_ray.config import load_job_config
    from polyp_ray.searchspace import load_searchspace

    (tmp_path / "space.yaml").write_text("model: {choices: [unet, vgg16_unet]}\n"
                                         "encoder: {choices: [conv, resnet50, mobilenetv2], when: {model: [unet]}}\n"
                                         "encoder_weights: {choices: [none, imagenet]}\n")
    (tmp_path / "job.yaml").write_text("name: w\nsearchspace: space.yaml\n")
    job, space_path = load_job_config(tmp_path / "job.yaml")
    needed = needed_weights(job, load_searchspace(space_path))
    assert needed == [("mobilenetv2", "imagenet"), ("resnet50", "imagenet"), ("vgg16", "imagenet")]
    assert needed_weights(job, None) == []  # the fixed trial: unet on conv, no weights


def test_the_search_stops_offline_before_any_trial_with_one_line(offline: str, tmp_path: Path) -> None:
    (tmp_path / "space.yaml").write_text("model: {choices: [unet, vgg16_unet]}\n")
    (tmp_path / "job.yaml").write_text(f"name: w\nsearchspace: space.yaml\nstorage_path: {tmp_path / 'exp'}\n"
                                       "trial: {encoder_weights: imagenet}\n")
    proc = subprocess.run([sys.executable, "-m", "polyp_ray.search", "--job", str(tmp_path / "job.yaml")],
                          cwd=tmp_path, env=dict(os.environ), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip()
    assert "\n" not in line and "Traceback" not in line, line
    assert f"job.yaml: trial.encoder_weights: imagenet: {VGG16.file}: cannot download {offline}/" in line
    assert f"put the file at {tmp_path / 'keras' / 'models' / VGG16.file}" in line
    assert not (tmp_path / "exp").exists()
