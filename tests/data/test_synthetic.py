import numpy as np
from PIL import Image

from polyp_ray.config import DataConfig
from polyp_ray.data import describe_dataset
from polyp_ray.data.synthetic import synthetic_dataset, synthetic_pair


def test_generated_once_in_kvasir_layout(tmp_path) -> None:
    root = synthetic_dataset(tmp_path, count=8, seed=1)
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == ["images", "masks"]
    assert len(list((root / "images").glob("*.png"))) == 8
    stamp = (root / "images" / "synth_0000.png").stat().st_mtime_ns
    assert synthetic_dataset(tmp_path, count=8, seed=1) == root
    assert (root / "images" / "synth_0000.png").stat().st_mtime_ns == stamp


def test_pairs_are_seeded_and_masks_are_plausible_polyps() -> None:
    a = synthetic_pair(np.random.default_rng(3), 96, 80)
    b = synthetic_pair(np.random.default_rng(3), 96, 80)
    np.testing.assert_array_equal(a[0], b[0])
    image, mask = a
    assert image.shape == (80, 96, 3) and mask.shape == (80, 96)
    assert set(np.unique(mask)) == {0, 255}
    assert 0.01 < (mask > 0).mean() < 0.6
    # A polyp must be visible: its pixels differ from the background on average.
    assert abs(image[mask > 0].mean() - image[mask == 0].mean()) > 5


def test_synthetic_config_resolves_to_a_valid_dataset(tmp_path) -> None:
    info, pairs = describe_dataset(DataConfig(cache_dir=str(tmp_path), synthetic_count=10))
    assert info.n_pairs == 10 == len(pairs)
    assert Image.open(pairs[0].mask).mode == "L"
