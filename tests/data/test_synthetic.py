import numpy as np
from PIL import Image

from polyp_ray.config import DataConfig
from polyp_ray.data import describe_dataset, prepare_data
from polyp_ray.data.synthetic import SIZES, synthetic_dataset, synthetic_pair, synthetic_video_dataset


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


def test_synthetic_splits_carry_original_size_truths(tmp_path) -> None:
    data = prepare_data(DataConfig(cache_dir=str(tmp_path), synthetic_count=12, val_fraction=0.25,
                                   test_fraction=0.25), 32)
    assert data.splits["train"].truths is None
    shapes = {(h, w) for w, h in SIZES}
    for name in ("val", "test"):
        split = data.splits[name]
        assert split.truths is not None and len(split.truths) == len(split)
        assert {t.shape for t in split.truths} <= shapes and len({t.shape for t in split.truths}) > 1
        assert all(set(np.unique(t)) == {0, 1} for t in split.truths)
        assert split.masks.shape[1:] == (32, 32, 1)


def test_synthetic_video_frames_pan_over_one_scene(tmp_path) -> None:
    root = synthetic_video_dataset(tmp_path, sequences=2, frames=3, step=4)
    first, second = (np.asarray(Image.open(root / "Original" / f"{n}.png"), dtype=float) for n in (1, 2))
    # The second frame is the first moved by the pan (4 px in each axis, either way), up to noise.
    shifts = [np.abs(first[max(dy, 0):128 + min(dy, 0), max(dx, 0):160 + min(dx, 0)]
                     - second[max(-dy, 0):128 + min(-dy, 0), max(-dx, 0):160 + min(-dx, 0)]).mean()
              for dy in (-4, 4) for dx in (-4, 4)]
    assert min(shifts) < 6 < np.abs(first - second).mean()
    assert sorted(p.stem for p in (root / "Ground Truth").glob("*.png")) == ["1", "2", "3", "4", "5", "6"]
