"""Every bad input is refused before training with a message that names the offending file."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from polyp_ray.config import DataConfig
from polyp_ray.data import prepare_data
from polyp_ray.data.images import read_image, read_mask
from polyp_ray.errors import DataError
from tests.conftest import write_pair


def _prepare(root: Path):
    return prepare_data(DataConfig(path=str(root), cache_dir=str(root / ".cache")), 32)


def test_image_without_mask(small_dataset: Path) -> None:
    (small_dataset / "masks" / "img03.png").unlink()
    with pytest.raises(DataError) as err:
        _prepare(small_dataset)
    assert "images/img03.png: image has no mask" in str(err.value)


def test_mask_without_image(small_dataset: Path) -> None:
    (small_dataset / "images" / "img04.png").unlink()
    with pytest.raises(DataError) as err:
        _prepare(small_dataset)
    assert "masks/img04.png: mask has no image" in str(err.value)


def test_truncated_image(small_dataset: Path) -> None:
    path = small_dataset / "images" / "img05.jpg"
    (small_dataset / "images" / "img05.png").unlink()
    Image.fromarray(np.full((32, 40, 3), 120, np.uint8)).save(path, quality=95)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError) as err:
        _prepare(small_dataset)
    assert "images/img05.jpg: unreadable or truncated image" in str(err.value)


def test_unreadable_mask(small_dataset: Path) -> None:
    (small_dataset / "masks" / "img06.png").write_bytes(b"not an image at all")
    with pytest.raises(DataError, match=r"masks/img06.png: unreadable or truncated image"):
        _prepare(small_dataset)


def test_size_mismatch(small_dataset: Path) -> None:
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(small_dataset / "masks" / "img07.png")
    with pytest.raises(DataError) as err:
        _prepare(small_dataset)
    assert "masks/img07.png: mask is 10x10 but its image img07.png is 40x32" in str(err.value)


def test_mask_that_is_not_binarisable(small_dataset: Path) -> None:
    ramp = np.tile(np.linspace(0, 255, 40, dtype=np.uint8), (32, 1))
    Image.fromarray(ramp).save(small_dataset / "masks" / "img08.png")
    with pytest.raises(DataError, match=r"masks/img08.png: mask is not binarisable"):
        _prepare(small_dataset)


def test_empty_dataset_folder(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(DataError, match=r"images: empty folder"):
        _prepare(tmp_path)


def test_every_problem_is_listed_on_its_own_line(small_dataset: Path) -> None:
    (small_dataset / "masks" / "img01.png").write_bytes(b"junk")
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(small_dataset / "masks" / "img02.png")
    with pytest.raises(DataError) as err:
        _prepare(small_dataset)
    lines = str(err.value).splitlines()
    assert lines[0].endswith("2 problems in the dataset")
    assert any("img01.png" in line for line in lines[1:]) and any("img02.png" in line for line in lines[1:])


def test_grayscale_rgba_and_16bit_are_converted(tmp_path: Path) -> None:
    grey = tmp_path / "grey.png"
    Image.fromarray(np.full((8, 8), 77, np.uint8)).save(grey)
    rgba = tmp_path / "rgba.png"
    Image.fromarray(np.full((8, 8, 4), 200, np.uint8), mode="RGBA").save(rgba)
    wide = tmp_path / "wide.tif"
    Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(wide)
    assert read_image(grey).shape == (8, 8, 3) and read_image(grey)[0, 0, 0] == 77
    assert read_image(rgba).shape == (8, 8, 3) and read_image(rgba)[0, 0, 1] == 200
    assert read_mask(wide).dtype == np.uint8 and read_mask(wide).max() == 255


def test_label_map_masks_are_scaled(tmp_path: Path) -> None:
    labels = np.zeros((8, 8), np.uint8)
    labels[2:4, 2:4] = 1
    Image.fromarray(labels).save(tmp_path / "m.png")
    assert set(np.unique(read_mask(tmp_path / "m.png"))) == {0, 255}


def test_jpeg_noisy_masks_binarise_at_threshold(tmp_path: Path) -> None:
    write_pair(tmp_path, "images", "masks", "a", suffix=".jpg", size=(64, 64))
    for i in range(3):
        write_pair(tmp_path, "images", "masks", f"b{i}", size=(64, 64), seed=i)
    data = _prepare(tmp_path)
    masks = np.concatenate([s.masks for s in data.splits.values()])
    assert set(np.unique(masks)) == {0, 1}
