"""Open image files that users bring, or say in one line, naming the file, why not.

Pillow decodes every format (TensorFlow's decoders do not read TIFF); grayscale, palette, RGBA and
16-bit images are converted to 8-bit RGB instead of being rejected. Masks are read by ``masks.py``,
which must see the file's own values before any colour conversion.

Every file, image or mask, is turned upright by its EXIF Orientation tag when it has one: phones and
some annotation tools store a JPEG's pixels sideways with a tag saying so, and read as stored such an
image trains against its upright mask rotated by 90 degrees, without a word.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from polyp_ray.errors import DataError, one_line

# Larger images are refused from their header, before decoding: a 14000x14000 PNG would take
# gigabytes to decode, and no endoscope records more than 4K (8.3 megapixels).
MAX_PIXELS = 50_000_000


def file_problem(path: Path, err: OSError) -> str:
    """Why ``path`` could not be read, in words a user can act on."""
    if path.is_symlink() and not path.exists():
        return f"broken symbolic link (points to {os.readlink(path)})"
    if isinstance(err, PermissionError):
        return "not readable (permission denied)"
    if isinstance(err, IsADirectoryError) or path.is_dir():
        return "a folder, not an image file"
    if isinstance(err, FileNotFoundError):
        return "file not found"
    return f"not readable ({err.strerror or err})"


def open_image(path: Path) -> Image.Image:
    """The fully decoded image, or a DataError naming the file (missing, unreadable, truncated, too large)."""
    try:
        if path.stat().st_size == 0:
            raise DataError(f"{path}: empty file (0 bytes)")
        with Image.open(path) as img:
            if img.width * img.height > MAX_PIXELS:
                raise DataError(_too_large(path, img.width, img.height))
            img.load()  # forces a full decode, so truncated files fail here and not mid-training
            return upright(img)
    except DataError:
        raise
    except Image.DecompressionBombError as err:  # Pillow's own limit, above ours; raised from the header
        pixels = re.search(r"\((\d+) pixels\)", str(err))
        size = f"{int(pixels.group(1)):,} pixels; " if pixels else ""
        raise DataError(f"{path}: image too large ({size}the limit is {MAX_PIXELS:,})") from None
    except (FileNotFoundError, PermissionError, IsADirectoryError) as err:
        raise DataError(f"{path}: {file_problem(path, err)}") from None
    except Exception as err:  # a corrupt file can make a decoder raise almost anything
        raise DataError(f"{path}: unreadable or truncated image ({one_line(err)})") from None


def upright(img: Image.Image) -> Image.Image:
    """A copy of ``img`` turned as its EXIF Orientation tag says (unchanged without one)."""
    try:
        turned = ImageOps.exif_transpose(img)
    except (ValueError, OSError, SyntaxError, KeyError, TypeError):  # an unreadable EXIF block: as stored
        return img.copy()
    return turned if turned is not None else img.copy()


def _too_large(path: Path, width: int, height: int) -> str:
    return (f"{path}: image too large ({width}x{height} = {width * height:,} pixels; "
            f"the limit is {MAX_PIXELS:,})")


def read_image(path: Path) -> np.ndarray:
    """An RGB uint8 array [H, W, 3]."""
    return to_rgb(open_image(path), path)


def to_rgb(img: Image.Image, path: Path) -> np.ndarray:
    """Any image mode as RGB uint8 [H, W, 3]."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        img = Image.fromarray(wide_to_uint8(np.asarray(img)), mode="L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")  # the colours as stored: an image's alpha carries no meaning here
    array = np.asarray(img.convert("RGB") if img.mode != "RGB" else img, dtype=np.uint8)
    if array.size == 0:
        raise DataError(f"{path}: image has no pixels")
    return array


def wide_to_uint8(values: np.ndarray) -> np.ndarray:
    """16/32-bit or float grey levels as 0..255: scaled by the bit depth the values use.

    Values up to 255 are kept as they are (8-bit data in a 16-bit file), floats up to 1.0 are read as
    a 0..1 scale, and anything larger is scaled by the smallest full range that holds its maximum
    (12-bit 0..4095, 16-bit 0..65535), so a 12-bit mask is not mistaken for a dark 16-bit one.
    """
    floating = np.issubdtype(np.asarray(values).dtype, np.floating)
    values = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    values = np.clip(values, 0, None)
    top = float(values.max()) if values.size else 0.0
    if floating and 0 < top <= 1.0 and not _integral(values):
        scale = 255.0
    elif top <= 255:
        scale = 1.0
    else:
        scale = 255.0 / (2.0 ** int(top).bit_length() - 1)
    return np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)


def _integral(values: np.ndarray) -> bool:
    return bool(np.all(values == np.rint(values)))
