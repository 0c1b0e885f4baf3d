"""Every common mask encoding reads as the polyp it draws, or is refused naming the file; never emptied."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from polyp_ray.data.masks import read_mask
from polyp_ray.errors import DataError


def _truth(height: int = 48, width: int = 64, small: bool = False) -> np.ndarray:
    """A 0/1 polyp: an ellipse, or a 4x3 speck when ``small``."""
    mask = np.zeros((height, width), np.uint8)
    if small:
        mask[30:34, 40:43] = 1
    else:
        yy, xx = np.mgrid[0:height, 0:width]
        mask[((yy - 0.42 * height) / (height / 4)) ** 2 + ((xx - 0.47 * width) / (0.28 * width)) ** 2 < 1] = 1
    return mask


@pytest.mark.parametrize("small", [False, True])
@pytest.mark.parametrize("colour", [(255, 0, 0), (0, 0, 255), (0, 255, 0), (150, 0, 0), (255, 255, 0)])
def test_colour_polyp_on_black_is_read_whole(tmp_path: Path, colour: tuple[int, int, int], small: bool) -> None:
    # Luminance of pure red is 76 and of pure blue 29: a grey conversion first would empty these.
    truth = _truth(small=small)
    rgb = truth[..., None] * np.array(colour, np.uint8)
    Image.fromarray(rgb.astype(np.uint8)).save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), truth)


def test_colour_jpeg_mask_with_chroma_noise(tmp_path: Path) -> None:
    truth = _truth()
    Image.fromarray((truth[..., None] * np.array([255, 0, 0], np.uint8)).astype(np.uint8)).save(
        tmp_path / "m.jpg", quality=75)
    read = read_mask(tmp_path / "m.jpg")
    assert np.sum(read != truth) <= 0.01 * truth.size


def test_rgba_transparent_background_is_background(tmp_path: Path) -> None:
    truth = _truth()
    rgba = np.zeros((*truth.shape, 4), np.uint8)
    rgba[..., :3] = 255  # white everywhere, but only the polyp is opaque
    rgba[..., 3] = truth * 255
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), truth)


def test_palette_mask_is_decided_on_indices(tmp_path: Path) -> None:
    # VOC-style: index 0 black, index 1 dark red (128, 0, 0), whose grey level (38) is below 127.
    truth = _truth()
    img = Image.fromarray(truth, mode="P")
    img.putpalette([0, 0, 0, 128, 0, 0] + [0] * 762)
    img.save(tmp_path / "m.png")
    assert Image.open(tmp_path / "m.png").mode == "P"
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), truth)


def test_palette_in_arbitrary_colour_order_is_read_by_colour(tmp_path: Path) -> None:
    # Index 0 is white (the polyp) and index 1 black (background): indices alone would invert it.
    truth = _truth()
    img = Image.fromarray((1 - truth).astype(np.uint8), mode="P")
    img.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)
    img.save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), truth)


@pytest.mark.parametrize("quality", [75, 95])
def test_label_map_saved_as_jpeg(tmp_path: Path, quality: int) -> None:
    truth = _truth(192, 256)
    Image.fromarray(truth).save(tmp_path / "m.jpg", quality=quality)
    assert np.asarray(Image.open(tmp_path / "m.jpg")).max() <= 3  # what JPEG makes of {0, 1}
    read = read_mask(tmp_path / "m.jpg").astype(bool)
    assert (read & (truth > 0)).sum() / (read | (truth > 0)).sum() > 0.95  # only the border blurs


@pytest.mark.parametrize("top", [1, 255, 4095, 65535])
def test_16_bit_masks(tmp_path: Path, top: int) -> None:
    truth = _truth()
    Image.fromarray(truth.astype(np.uint16) * np.uint16(top)).save(tmp_path / "m.tif")
    np.testing.assert_array_equal(read_mask(tmp_path / "m.tif"), truth)


def test_bilevel_and_float_masks(tmp_path: Path) -> None:
    truth = _truth()
    Image.fromarray(truth.astype(bool)).save(tmp_path / "bits.png")
    Image.fromarray(truth.astype(np.float32) * 0.9, mode="F").save(tmp_path / "prob.tif")
    assert Image.open(tmp_path / "bits.png").mode == "1"
    np.testing.assert_array_equal(read_mask(tmp_path / "bits.png"), truth)
    np.testing.assert_array_equal(read_mask(tmp_path / "prob.tif"), truth)


def test_kvasir_style_jpeg_noise_binarises_at_the_threshold(tmp_path: Path) -> None:
    truth = _truth()
    Image.fromarray(np.stack([truth * 255] * 3, axis=-1).astype(np.uint8)).save(tmp_path / "m.jpg", quality=90)
    levels = np.asarray(Image.open(tmp_path / "m.jpg"))
    assert len(np.unique(levels)) > 2  # the noise is there
    assert np.sum(read_mask(tmp_path / "m.jpg") != truth) <= 0.01 * truth.size


def test_threshold_applies_to_grey_masks(tmp_path: Path) -> None:
    truth = _truth()
    Image.fromarray((truth * 100).astype(np.uint8)).save(tmp_path / "faint.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "faint.png", threshold=50), truth)
    with pytest.raises(DataError) as err:
        read_mask(tmp_path / "faint.png", threshold=127)
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'faint.png'}: mask binarises to empty")
    assert "reach 100" in message and "data.mask_threshold" in message and "\n" not in message


def test_two_level_mask_below_white_is_not_called_mid_grey(tmp_path: Path) -> None:
    truth = _truth()
    Image.fromarray((truth * 160).astype(np.uint8)).save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), truth)


def test_all_black_mask_is_empty_not_an_error(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(tmp_path / "m.png")
    assert read_mask(tmp_path / "m.png").sum() == 0


def test_soft_mask_is_refused(tmp_path: Path) -> None:
    ramp = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (48, 1))
    Image.fromarray(np.stack([ramp, ramp * 0, ramp * 0], axis=-1)).save(tmp_path / "m.png")
    with pytest.raises(DataError, match=r"m.png: mask is not binarisable"):
        read_mask(tmp_path / "m.png")


def test_garbage_bytes_name_the_file(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.fromarray(_truth() * 255).save(buffer, "PNG")
    (tmp_path / "m.png").write_bytes(buffer.getvalue()[:60])
    with pytest.raises(DataError, match=r"m.png: unreadable or truncated image"):
        read_mask(tmp_path / "m.png")
