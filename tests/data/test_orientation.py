"""Files stored sideways with an EXIF Orientation tag (phones, annotation tools) are read upright,
images and masks alike, so a pair trains aligned; sizes that still disagree are refused, naming it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from polyp_ray.config import DataConfig
from polyp_ray.data import describe_dataset, prepare_data
from polyp_ray.data.images import read_image
from polyp_ray.errors import DataError

SIDE = 40
# Orientation tag -> how the stored pixels were turned from upright (what a phone writes).
STORED = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270, 3: Image.Transpose.ROTATE_180}


def _upright(index: int, width: int = SIDE, height: int = SIDE) -> tuple[np.ndarray, np.ndarray]:
    """A grey image with a red polyp in its top-left part (never symmetric), and its 0/255 mask."""
    mask = np.zeros((height, width), np.uint8)
    top, left = 3 + index % 3, 4 + index % 4
    mask[top:top + height // 3, left:left + width // 4] = 255
    image = np.full((height, width, 3), 90, np.uint8)
    image[mask > 0] = (230, 40, 40)
    return image, mask


def _save(array: np.ndarray, path: Path, tag: int | None) -> None:
    img = Image.fromarray(array)
    if tag is None:
        img.save(path, quality=95) if path.suffix == ".jpg" else img.save(path)
        return
    exif = Image.Exif()
    exif[0x0112] = tag
    stored = img.transpose(STORED[tag])
    if path.suffix == ".jpg":
        stored.save(path, quality=95, exif=exif)
    else:
        stored.save(path, exif=exif)


def _dataset(root: Path, tags: list[tuple[int | None, int | None]], width: int = SIDE) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i, (image_tag, mask_tag) in enumerate(tags):
        image, mask = _upright(i, width)
        _save(image, root / "images" / f"p{i}.jpg", image_tag)
        _save(mask, root / "masks" / f"p{i}.png", mask_tag)
    return root


def _config(root: Path) -> DataConfig:
    return DataConfig(path=str(root), cache_dir=str(root / ".cache"), val_fraction=0.25, test_fraction=0.25,
                      group_near_duplicates=False)


def _red(images: np.ndarray) -> np.ndarray:
    return (images[..., 0].astype(int) - images[..., 1].astype(int)) > 100


def test_rotated_images_and_masks_train_aligned(tmp_path: Path) -> None:
    # Square files: read as stored, a rotated image keeps its size and trains silently misaligned.
    tags = [(6, None), (8, None), (3, None), (None, 6), (None, 8), (6, 6), (None, None), (None, None)]
    prepared = prepare_data(_config(_dataset(tmp_path / "d", tags)), 32)
    for split in prepared.splits.values():
        for images, masks, stem in zip(split.images, split.masks, split.stems, strict=True):
            red, polyp = _red(images), masks[..., 0] > 0
            overlap = (red & polyp).sum() / max(1, (red | polyp).sum())
            assert overlap > 0.8, (stem, overlap)
        for truth, stem in zip(split.truths or [], split.stems if split.truths else [], strict=True):
            assert np.array_equal(truth, _upright(int(stem[1:]))[1] > 0), stem  # scored on the upright mask


def test_a_rotated_non_square_image_matches_its_mask(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "d", [(6, None), (None, 8), (None, None), (None, None)], width=56)
    info, pairs = describe_dataset(_config(root))
    assert info.n_pairs == 4
    assert read_image(root / "images" / "p0.jpg").shape == (SIDE, 56, 3)  # upright: what predict reads too


def test_sizes_that_still_disagree_are_refused_naming_the_pair(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "d", [(None, None)] * 4, width=56)
    image, _ = _upright(1, 56)
    Image.fromarray(image).transpose(STORED[6]).save(root / "images" / "p1.jpg", quality=95)  # turned, no tag
    with pytest.raises(DataError) as err:
        describe_dataset(_config(root))
    lines = str(err.value).splitlines()
    assert len(lines) == 2 and "masks/p1.png: mask is 56x40 but its image p1.jpg is 40x56" in lines[1]
    assert "without its EXIF Orientation tag" in lines[1]
