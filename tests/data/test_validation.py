"""Every bad input is refused before training with a message that names the offending file."""

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from polyp_ray.config import DataConfig
from polyp_ray.data import describe_dataset, prepare_data
from polyp_ray.data.images import read_image
from polyp_ray.data.masks import read_mask
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
    assert read_mask(wide).dtype == np.uint8 and read_mask(wide).shape == (8, 8) and read_mask(wide).min() == 1


def test_label_map_masks_are_read_as_labels(tmp_path: Path) -> None:
    labels = np.zeros((8, 8), np.uint8)
    labels[2:4, 2:4] = 1
    Image.fromarray(labels).save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), labels)


def test_jpeg_noisy_masks_binarise_at_threshold(tmp_path: Path) -> None:
    write_pair(tmp_path, "images", "masks", "a", suffix=".jpg", size=(64, 64))
    for i in range(3):
        write_pair(tmp_path, "images", "masks", f"b{i}", size=(64, 64), seed=i)
    data = _prepare(tmp_path)
    masks = np.concatenate([s.masks for s in data.splits.values()])
    assert set(np.unique(masks)) == {0, 1}


def _header_only_png(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims ``width`` x ``height`` (the pixel data is cut short, as a bomb's would be
    irrelevant): enough to prove that the size is refused from the header, before any decoding."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def _deny_reading(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``path`` unreadable: chmod where that works, else (root reads anything) refuse it in read_bytes."""
    path.chmod(0)
    if os.geteuid() == 0:
        real = Path.read_bytes

        def read_bytes(self: Path) -> bytes:
            if self == path:
                raise PermissionError(13, "Permission denied", str(self))
            return real(self)

        monkeypatch.setattr(Path, "read_bytes", read_bytes)


def test_one_run_lists_every_problem_of_every_file(small_dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    images, masks = small_dataset / "images", small_dataset / "masks"
    (images / "img01.png").unlink()
    (images / "img01.png").symlink_to(small_dataset / "gone.png")  # dangling
    _deny_reading(masks / "img02.png", monkeypatch)
    (images / "x.png").mkdir()
    _header_only_png(images / "img03.png", 14000, 14000)
    (masks / "img04.png").unlink()  # unpaired image
    # Two problems in one pair: a truncated image and a soft (mid-grey) mask.
    (images / "img05.png").write_bytes((images / "img05.png").read_bytes()[:100])
    ramp = np.tile(np.linspace(0, 255, 40).astype(np.uint8), (32, 1))
    Image.fromarray(ramp).save(masks / "img05.png")
    # Two problems in one mask: the wrong size, and a polyp too faint to survive the threshold.
    faint = np.zeros((20, 20), np.uint8)
    faint[5:10, 5:10] = 90
    Image.fromarray(faint).save(masks / "img06.png")
    with pytest.raises(DataError) as err:
        _prepare(small_dataset)
    lines = str(err.value).splitlines()
    expected = [
        ("images/img01.png", "broken symbolic link"),
        ("masks/img02.png", "not readable (permission denied)"),
        ("images/x.png", "a folder, not an image file"),
        ("images/img03.png", "image too large"),
        ("images/img04.png", "image has no mask"),
        ("images/img05.png", "unreadable or truncated image"),
        ("masks/img05.png", "mask is not binarisable"),
        ("masks/img06.png", "mask is 20x20 but its image img06.png is 40x32"),
        ("masks/img06.png", "mask binarises to empty"),
    ]
    assert lines[0].endswith(f"{len(expected)} problems in the dataset")
    for name, problem in expected:
        assert sum(name in line and problem in line for line in lines[1:]) == 1, (name, problem, lines)
    assert len(lines) == 1 + len(expected)
    assert not list((small_dataset / ".cache").rglob("*.np*"))  # nothing cached from a failed run


@pytest.mark.parametrize("side", [8000, 14000])
def test_huge_image_is_refused_from_its_header(small_dataset: Path, side: int) -> None:
    _header_only_png(small_dataset / "images" / "img00.png", side, side)
    with pytest.raises(DataError) as err:
        _prepare(small_dataset)
    lines = str(err.value).splitlines()
    assert len(lines) == 2 and "images/img00.png: image too large" in lines[1] and "50,000,000" in lines[1]


def _dataset_with_masks(root: Path, masks: list[np.ndarray]) -> Path:
    for i, mask in enumerate(masks):
        write_pair(root, "images", "masks", f"p{i:02d}", seed=i)
        Image.fromarray(mask).save(root / "masks" / f"p{i:02d}.png")
    return root


def _mask(fill: float) -> np.ndarray:
    mask = np.zeros((32, 40), np.uint8)
    mask[: int(round(32 * fill))] = 255
    return mask


def test_mostly_empty_dataset_is_refused_unless_allowed(tmp_path: Path) -> None:
    root = _dataset_with_masks(tmp_path, [_mask(0.0)] * 7 + [_mask(0.25)] * 5)
    with pytest.raises(DataError) as err:
        _prepare(root)
    assert "7 of 12 masks are empty" in str(err.value) and "data.allow_empty_masks" in str(err.value)
    config = DataConfig(path=str(root), cache_dir=str(root / ".cache"), allow_empty_masks=True)
    data = prepare_data(config, 32)
    assert sum(len(s) for s in data.splits.values()) == 12


def test_mostly_full_dataset_is_refused_unless_allowed(tmp_path: Path) -> None:
    root = _dataset_with_masks(tmp_path, [_mask(0.75)] * 8 + [_mask(0.25)] * 4)
    with pytest.raises(DataError, match=r"8 of 12 masks mark more than half of their image as polyp: inverted"):
        _prepare(root)
    prepare_data(DataConfig(path=str(root), cache_dir=str(root / ".cache"), allow_full_masks=True), 32)


def test_a_few_empty_masks_are_fine(tmp_path: Path) -> None:
    root = _dataset_with_masks(tmp_path, [_mask(0.0)] * 2 + [_mask(0.25)] * 10)
    assert sum(len(s) for s in _prepare(root).splits.values()) == 12


def test_red_masks_train_on_their_polyps(tmp_path: Path) -> None:
    # A whole dataset of red-on-black masks (e.g. exported from an annotation tool) keeps its polyps.
    for i in range(6):
        write_pair(tmp_path, "images", "masks", f"r{i}", seed=i)
        rgb = np.zeros((32, 40, 3), np.uint8)
        rgb[8:16, 10:20, 0] = 255
        Image.fromarray(rgb).save(tmp_path / "masks" / f"r{i}.png")
    data = _prepare(tmp_path)
    for split in data.splits.values():
        assert split.masks.reshape(len(split), -1).sum(axis=1).min() > 0


def test_truths_are_the_original_size_masks(tmp_path: Path) -> None:
    sizes = [(40, 32), (64, 48), (50, 70), (33, 31)]
    for i in range(12):
        write_pair(tmp_path, "images", "masks", f"t{i:02d}", size=sizes[i % 4], seed=i)
    config = DataConfig(path=str(tmp_path), cache_dir=str(tmp_path / ".cache"), val_fraction=0.25,
                        test_fraction=0.25)
    for _ in range(2):  # decoded, then from the caches
        data = prepare_data(config, 32)
        assert data.splits["train"].truths is None
        for name in ("val", "test"):
            split = data.splits[name]
            assert split.truths is not None and len(split.truths) == len(split) > 0
            for stem, truth in zip(split.stems, split.truths, strict=True):
                expected = np.asarray(Image.open(tmp_path / "masks" / f"{stem}.png")) > 127
                assert truth.dtype == np.uint8 and truth.shape == expected.shape
                np.testing.assert_array_equal(truth, expected)


def test_validation_is_cached_by_content(small_dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import polyp_ray.data.validation as validation

    config = DataConfig(path=str(small_dataset), cache_dir=str(small_dataset / ".cache"))
    first, _ = describe_dataset(config)

    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("decoded again")

    monkeypatch.setattr(validation, "check_pair", no_decoding)
    assert describe_dataset(config)[0] == first
    # Changed content is a different dataset: checked afresh.
    write_pair(small_dataset, "images", "masks", "img00", seed=99)
    with pytest.raises(AssertionError, match="decoded again"):
        describe_dataset(config)


def test_no_pair_at_all_lists_every_lonely_file(tmp_path: Path) -> None:
    write_pair(tmp_path, "images", "masks", "a")
    write_pair(tmp_path, "images", "masks", "b")
    (tmp_path / "masks" / "a.png").rename(tmp_path / "masks" / "c.png")
    (tmp_path / "masks" / "b.png").rename(tmp_path / "masks" / "d.png")
    with pytest.raises(DataError) as err:
        _prepare(tmp_path)
    assert str(err.value).splitlines()[0].endswith("4 problems in the dataset")
