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

REPO = Path(__file__).resolve().parents[1]
KVASIR = Path(os.environ.get("POLYP_RAY_KVASIR", REPO.parent / "shared" / "data" / "Kvasir-SEG"))


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Caches go to a temporary folder: never the user's home, never the read-only ../shared."""
    cache = tmp_path_factory.mktemp("polyp_ray_cache")
    os.environ["POLYP_RAY_CACHE"] = str(cache)
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
