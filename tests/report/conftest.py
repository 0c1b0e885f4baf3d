"""Report fixtures: the shared tiny search's report, and a second, smaller search whose job name, dataset
folder and one test image are named like markup (``<img src=x onerror=alert(1)>``, legal on Linux)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from polyp_ray.config import DataConfig
from polyp_ray.data.dataset import split_stems
from polyp_ray.report import build_report
from tests.conftest import search_command, write_pair
from tests.report.fake import HOSTILE

XSS_SPACE = """\
model: {choices: [unet]}
base_width: {choices: [4]}
image_size: {choices: [32]}
batch_size: {choices: [4]}
learning_rate: {low: 1.0e-3, high: 1.0e-2, log: true}
"""
SPLIT = {"val_fraction": 0.25, "test_fraction": 0.25}


@pytest.fixture(scope="session")
def tiny_report(tiny_experiment: Path) -> Path:
    """The report the shared tiny search wrote into its experiment folder, with the gallery (the best model
    predicted): what a user opens, not a second build of it."""
    report = tiny_experiment / "polyp_ray" / "report.html"
    assert report.is_file()
    return report


@pytest.fixture(scope="session")
def xss_experiment(tmp_path_factory: pytest.TempPathFactory, private_cache: Path) -> Path:
    """A 1-trial, 1-epoch search over 24 pairs, one of them named HOSTILE and in the test split (one trial
    writes every place a name reaches: the title, the job, the dataset root, the plots and the gallery)."""
    folder = tmp_path_factory.mktemp("xss_search")
    data = folder / f"data {HOSTILE}"
    stems = [f"p{i:02d}" for i in range(23)] + [HOSTILE]
    for i, stem in enumerate(stems):
        write_pair(data, "images", "masks", stem, seed=i)
    (folder / "space.yaml").write_text(XSS_SPACE)
    job = {"name": HOSTILE, "searchspace": "space.yaml", "storage_path": str(folder / "experiments"),
           "num_samples": 1, "grace_period": 1, "reduction_factor": 2, "max_concurrent": 1, "ensemble_k": 1,
           "tta": False, "data": {"path": str(data), **SPLIT, "split_seed": _seed_putting_in_test(stems, HOSTILE)},
           "trial": {"epochs": 1, "num_predictions": 2}}
    (folder / "job.yaml").write_text(yaml.safe_dump(job))
    proc = subprocess.run(search_command("--job", str(folder / "job.yaml"), "--name", f"xss {HOSTILE}"),
                          cwd=folder, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return folder / "experiments" / f"xss {HOSTILE}"


def _seed_putting_in_test(stems: list[str], stem: str) -> int:
    for seed in range(100):
        split = split_stems(stems, DataConfig(path="x", split_seed=seed, **SPLIT))
        if stem in split["test"]:
            return seed
    raise AssertionError(f"no split seed puts {stem!r} into the test split")


@pytest.fixture(scope="session")
def large_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A fabricated 2,000-trial search and its report (no gallery: no model), built once per session."""
    from tests.report.fake_search import write_search

    exp = write_search(tmp_path_factory.mktemp("large_search"), 2000)
    return exp, build_report(exp, tmp_path_factory.mktemp("large_report") / "large.html", gallery=False)
