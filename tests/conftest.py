"""Shared fixtures: a private cache per test session, tiny synthetic datasets, the Kvasir-SEG path.

Real-data tests read the dataset named by one setting, the environment variable POLYP_RAY_KVASIR
(default: ../shared/data/Kvasir-SEG beside the repository), and are skipped where it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.http_files import offline, server  # noqa: F401  the download fixtures, for every test folder

REPO = Path(__file__).resolve().parents[1]
KVASIR = Path(os.environ.get("POLYP_RAY_KVASIR", REPO.parent / "shared" / "data" / "Kvasir-SEG"))


# The searches several test files share (session fixtures: each is made once per pytest-xdist worker that
# asks for it, and each costs the suite a minute). pyproject.toml runs the suite on 2 workers.
SHARED_SEARCHES = {"tiny_experiment", "kvasir_experiment", "xss_experiment", "experiment"}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook, which reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep each test on the worker that holds what it needs: the tests of each shared search together (no
    test uses two), and each other file's tests together (its module fixtures are then made once)."""
    for item in items:
        uses = sorted(SHARED_SEARCHES & set(getattr(item, "fixturenames", ())))
        item.add_marker(pytest.mark.xdist_group(uses[0] if uses else item.nodeid.split("::")[0]))
    # A test that changes its shared search (a resume in place) goes after the others (a stable sort:
    # the rest keep their order), and a group's tests run in this order on its worker.
    items.sort(key=lambda item: item.get_closest_marker("changes_shared_search") is not None)


def pytest_configure(config: pytest.Config) -> None:
    """pytest 9.2 no longer reads the test ids in which pytest-xdist's loadgroup writes the groups: the
    suite still passes there, but every shared search runs once per worker. Say so, once."""
    from packaging.version import Version

    if config.getoption("dist", "no") == "loadgroup" and Version(pytest.__version__) >= Version("9.2"):
        config.issue_config_time_warning(pytest.PytestConfigWarning(
            f"pytest {pytest.__version__} drops pytest-xdist's test groups: each shared search runs on every "
            "worker (minutes more); install the test extra's pytest<9.2, or run -n 0"), stacklevel=2)


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Caches go to a temporary folder: never the user's home, never the read-only ../shared."""
    cache = tmp_path_factory.mktemp("polyp_ray_cache")
    os.environ["POLYP_RAY_CACHE"] = str(cache)
    # No test downloads from the internet: public addresses point at a closed local port, and Keras's
    # cache is a fresh folder (never the user's ~/.keras).
    os.environ["POLYP_RAY_MIRROR"] = "http://127.0.0.1:1"
    os.environ["KERAS_HOME"] = str(tmp_path_factory.mktemp("keras"))
    return cache


@pytest.fixture(scope="session")
def kvasir() -> Path:
    if not (KVASIR / "images").is_dir():
        pytest.skip(f"Kvasir-SEG not found at {KVASIR} (set POLYP_RAY_KVASIR)")
    return KVASIR


def write_pair(root: Path, image_dir: str, mask_dir: str, stem: str, size=(40, 32), suffix=".png",
               mask_suffix: str | None = None, seed: int = 0) -> tuple[Path, Path]:
    """One random RGB image and a rectangle mask, written in the given folders."""
    rng = np.random.default_rng(seed)
    (root / image_dir).mkdir(parents=True, exist_ok=True)
    (root / mask_dir).mkdir(parents=True, exist_ok=True)
    width, height = size
    image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[height // 4: height // 2, width // 4: width // 2] = 255
    image_path = root / image_dir / f"{stem}{suffix}"
    mask_path = root / mask_dir / f"{stem}{mask_suffix or suffix}"
    Image.fromarray(image).save(image_path)
    Image.fromarray(mask).save(mask_path)
    return image_path, mask_path


@pytest.fixture
def small_dataset(tmp_path: Path) -> Path:
    """Twelve Kvasir-layout pairs of 40x32 PNGs."""
    for i in range(12):
        write_pair(tmp_path, "images", "masks", f"img{i:02d}", seed=i)
    return tmp_path


TINY_SPACE = """\
model: {choices: [unet, encoder_decoder]}
base_width: {choices: [4, 8]}
image_size: {choices: [32]}
batch_size: {choices: [4, 8]}
aug_strength: {low: 0.0, high: 1.0}
learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}
"""


def write_job(folder: Path, name: str, storage: Path | str, space: str = TINY_SPACE, epochs: int = 3,
              **settings: object) -> Path:
    """A small job file (synthetic data by default) with its own search space beside it; ``epochs`` is the
    job's trial.epochs (every trial's budget, ASHA's max_t), the other settings are job keys."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}-space.yaml").write_text(space)
    job = {"name": name, "searchspace": f"{name}-space.yaml", "storage_path": str(storage), "num_samples": 4,
           "grace_period": 1, "reduction_factor": 2, "max_concurrent": 2, "seed": 0,
           "data": {"path": "synthetic", "synthetic_count": 48, "val_fraction": 0.25, "test_fraction": 0.25},
           "trial": {"epochs": epochs, "num_predictions": 2}}
    for key, value in settings.items():
        if isinstance(value, dict) and isinstance(job.get(key), dict):
            job[key] = {**job[key], **value}  # type: ignore[dict-item]
        else:
            job[key] = value
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False))
    return path


def search_command(*args: str) -> list[str]:
    import sys

    return [sys.executable, "-m", "polyp_ray.search", *args]


EXTERNAL_PAIRS = 12  # the tiny search's external test set

# The space of the strategy searches and the markup-named one: two trials of it train in seconds.
SMALL_SPACE = ("model: {choices: [unet]}\nbase_width: {choices: [4]}\nimage_size: {choices: [32]}\n"
               "batch_size: {choices: [4, 8]}\nlearning_rate: {low: 1.0e-3, high: 1.0e-2, log: true}\n")

CONSOLE = "console.txt"  # a shared search's console, beside its experiments folder: what its user saw


def console_of(experiment: Path) -> str:
    """What the user of a shared search (a session fixture) saw on its console."""
    return (experiment.parents[1] / CONSOLE).read_text()

DEAD_CLUSTER = "127.0.0.1:9\n"  # what ray_current_cluster holds after a cluster died long ago

KVASIR_SPACE = ("model: {choices: [unet]}\nbase_width: {choices: [4, 8]}\nimage_size: {choices: [64]}\n"
                "batch_size: {choices: [8]}\nlearning_rate: {low: 1.0e-5, high: 3.0e-3, log: true}\n")


@pytest.fixture(scope="session")
def kvasir_experiment(kvasir: Path, tmp_path_factory: pytest.TempPathFactory, private_cache: Path) -> Path:
    """A small real search on Kvasir-SEG (2 unet trials, 64 px, 300 pairs), with its HTML report: a learning
    rate too small to learn in 2 epochs and a good one, the two points that must come out separated."""
    import subprocess

    folder = tmp_path_factory.mktemp("kvasir_search")
    job = write_job(folder, "kv", folder / "experiments", space=KVASIR_SPACE, num_samples=2, epochs=2,
                    grace_period=2, max_concurrent=2,
                    points_to_evaluate=[{"learning_rate": 1.0e-5}, {"learning_rate": 3.0e-3}],
                    data={"path": str(kvasir), "limit": 300, "val_fraction": 0.2, "test_fraction": 0.2})
    proc = subprocess.run(search_command("--job", str(job), "--name", "kv-run"), cwd=folder,
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (folder / "reports" / "kv-run.html").exists(), proc.stdout[-2000:]
    return folder / "experiments" / "kv-run"


@pytest.fixture(scope="session")
def tiny_experiment(tmp_path_factory: pytest.TempPathFactory, private_cache: Path) -> Path:
    """One real (small) search on two synthetic sources, shared by the search and report tests."""
    import subprocess
    import tempfile

    from polyp_ray.data.synthetic import synthetic_dataset

    folder = tmp_path_factory.mktemp("tiny_search")
    # Every family, the pretrained-encoder ones with random weights: their checkpoints must load wherever
    # the search scores them (a Ray worker that never imported the module registering their layers);
    # and the space samples encoders.
    space = TINY_SPACE.replace("[unet, encoder_decoder]", "[unet, encoder_decoder, vgg16_unet]") + (
        "encoder: {choices: [conv, mobilenetv2], when: {model: [unet, encoder_decoder]}}\n")
    # An external test set from another "centre": synthetic polyps of another seed, in their own folder.
    external = synthetic_dataset(folder / "external", count=EXTERNAL_PAIRS, seed=7)
    # Two training sources (data.path a list, as the literature's Kvasir + ClinicDB): 24 + 24 pairs.
    sources = [str(synthetic_dataset(folder / "sources", count=24, seed=seed)) for seed in (0, 1)]
    job = write_job(folder, "tiny", folder / "experiments", space=space, num_samples=6, epochs=4,
                    data={"path": sources, "external_tests": {"other_centre": str(external)}},
                    points_to_evaluate=[{"model": "vgg16_unet"}, {"model": "encoder_decoder", "encoder": "conv"},
                                        {"model": "unet", "encoder": "mobilenetv2"}])
    # Run where a stale cluster file names a Ray that died long ago: without --address the search must
    # start its own (tests/test_cli.py). The folder is short: Ray's Unix sockets live under it.
    ray_tmp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))
    (ray_tmp / "ray").mkdir()
    (ray_tmp / "ray" / "ray_current_cluster").write_text(DEAD_CLUSTER)
    (folder / "ray_tmpdir.txt").write_text(str(ray_tmp))
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp)}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run(search_command("--job", str(job), "--name", "tiny-run"), cwd=folder, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (folder / CONSOLE).write_text(proc.stdout + proc.stderr)
    return folder / "experiments" / "tiny-run"


XSS_SPLIT = {"val_fraction": 0.25, "test_fraction": 0.25}


@pytest.fixture(scope="session")
def xss_experiment(tmp_path_factory: pytest.TempPathFactory, private_cache: Path) -> Path:
    """A search over 24 pairs whose job name, dataset folder and one test image are named like markup
    (HOSTILE, legal on Linux): it writes every place a name reaches (the title, the job, the dataset root,
    the plots and the gallery), tests/report/test_xss.py. Its 2 trials of 2 epochs run under PBT (an exploit
    after each epoch) with QMC: it is also that strategy's tiny search (tests/tuning/test_strategy_searches.py)."""
    import subprocess

    import yaml

    from tests.report.fake import HOSTILE

    folder = tmp_path_factory.mktemp("xss_search")
    data = folder / f"data {HOSTILE}"
    stems = [f"p{i:02d}" for i in range(23)] + [HOSTILE]
    for i, stem in enumerate(stems):
        write_pair(data, "images", "masks", stem, seed=i)
    (folder / "space.yaml").write_text(SMALL_SPACE)
    job = {"name": HOSTILE, "searchspace": "space.yaml", "storage_path": str(folder / "experiments"),
           "num_samples": 2, "grace_period": 1, "max_concurrent": 2, "ensemble_k": 1, "tta": False,
           "scheduler": "pbt", "pbt": {"perturbation_interval": 1, "quantile_fraction": 0.5}, "sampler": "qmc",
           "data": {"path": str(data), **XSS_SPLIT, "split_seed": _seed_putting_in_test(stems, HOSTILE)},
           "trial": {"epochs": 2, "num_predictions": 2}}
    (folder / "job.yaml").write_text(yaml.safe_dump(job))
    proc = subprocess.run(search_command("--job", str(folder / "job.yaml"), "--name", f"xss {HOSTILE}"),
                          cwd=folder, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (folder / CONSOLE).write_text(proc.stdout)
    return folder / "experiments" / f"xss {HOSTILE}"


def _seed_putting_in_test(stems: list[str], stem: str) -> int:
    from polyp_ray.config import DataConfig
    from polyp_ray.data.dataset import split_stems

    for seed in range(100):
        split = split_stems(stems, DataConfig(path="x", split_seed=seed, **XSS_SPLIT))
        if stem in split["test"]:
            return seed
    raise AssertionError(f"no split seed puts {stem!r} into the test split")
