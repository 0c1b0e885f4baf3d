"""Read a mask in any common encoding as a 0/1 polyp map [H, W], or refuse it, naming the file.

A mask is never silently emptied: converting a colour or palette mask to luminance first (what
Pillow's ``convert("L")`` does) turns a pure red polyp into grey 76, below the 127 threshold, and the
polyp vanishes. So each encoding is read on its own values (the rule, in full, is in docs/data.md):

- palette masks: a label map, polyp = index > 0, decided on the indices before any colour lookup;
- 1-bit masks: polyp = 1;
- grey masks (8-bit, 16-bit, float): a label map ({0, 1}, JPEG noise makes it 0..3) when the largest
  value is at most ``LABEL_MAX``, else polyp = level > ``data.mask_threshold`` on the 0..255 scale;
- colour masks (RGB, RGBA, ...): the brightest channel plays the grey level, so a red, green or blue
  polyp on black is polyp; transparent pixels are background.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from polyp_ray.data.images import open_image, wide_to_uint8
from polyp_ray.errors import DataError

LABEL_MAX = 3  # {0, 1} label maps saved as JPEG come back as 0..2
MAX_PALETTE_LABELS = 16  # more palette entries in use: a quantised picture, read by its colours
BLACK = 32  # a palette colour no brighter than this is background
# A mask is binarisable when nearly all its pixels sit near its dark or its bright level; JPEG
# noise (Kvasir: 0..8 and 246..255) and anti-aliased borders stay far below this share.
AMBIGUOUS_LOW, AMBIGUOUS_HIGH = 0.125, 0.875  # of the mask's own brightest level
MAX_AMBIGUOUS_SHARE = 0.10


@dataclass(frozen=True)
class Levels:
    """A mask reduced to one 2-D uint8 array: class indices (``labels``) or 0..255 brightness."""

    values: np.ndarray
    labels: bool


def read_mask(path: Path, threshold: int = 127) -> np.ndarray:
    """The mask at ``path`` as 0/1 uint8 [H, W]; a DataError naming the file if it cannot be read right."""
    binary, problem = binarise(mask_levels(open_image(path), path), threshold)
    if problem:
        raise DataError(f"{path}: {problem}")
    return binary


def mask_levels(img: Image.Image, path: Path) -> Levels:
    """Reduce a decoded mask of any mode to one level per pixel, keeping the file's own values."""
    if img.mode == "1":
        return Levels(np.asarray(img, dtype=np.uint8), labels=True)
    if img.mode in ("P", "PA"):
        labels = _palette_labels(img)
        if labels is not None:
            return labels
        img = img.convert("RGBA")
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return Levels(wide_to_uint8(np.asarray(img)), labels=False)
    if img.mode == "L":
        return Levels(np.asarray(img, dtype=np.uint8), labels=False)
    if img.mode in ("LA", "La", "RGBA", "RGBa"):
        rgba = np.asarray(img.convert("RGBA"), dtype=np.uint8)
        return Levels(_over_black(rgba[..., :3].max(axis=-1), rgba[..., 3]), labels=False)
    try:
        rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (ValueError, OSError) as err:
        raise DataError(f"{path}: mask mode {img.mode} cannot be read ({err})") from None
    return Levels(rgb.max(axis=-1), labels=False)


def binarise(levels: Levels, threshold: int) -> tuple[np.ndarray, str | None]:
    """The 0/1 polyp map, and the reason it is unusable (None when it is usable)."""
    values = levels.values
    top = int(values.max()) if values.size else 0
    if levels.labels or top <= LABEL_MAX:
        return (values > 0).astype(np.uint8), None
    ambiguous = float(np.mean((values > AMBIGUOUS_LOW * top) & (values < AMBIGUOUS_HIGH * top)))
    if ambiguous > MAX_AMBIGUOUS_SHARE:
        return np.zeros_like(values), (
            f"mask is not binarisable ({ambiguous:.0%} of pixels are mid-grey; "
            "expected a black background and a white or coloured polyp)")
    binary = (values > threshold).astype(np.uint8)
    if not binary.any():
        return binary, (f"mask binarises to empty at data.mask_threshold={threshold} although its values "
                        f"reach {top}: a faint polyp? set data.mask_threshold below {top}")
    return binary, None


def _palette_labels(img: Image.Image) -> Levels | None:
    """The palette indices as labels, or None when the palette is a picture's colour table."""
    indices = np.asarray(img, dtype=np.uint8)
    if indices.ndim == 3:  # PA: index and alpha
        indices = indices[..., 0]
    used = [int(i) for i in np.unique(indices)]
    if len(used) > MAX_PALETTE_LABELS:
        return None
    colours = np.asarray(img.getpalette() or [], dtype=np.uint8).reshape(-1, 3)

    def brightness(index: int) -> int:
        return int(colours[index].max()) if index < len(colours) else 0

    # A label palette puts background at index 0 (VOC: black). A non-black index 0 beside a black
    # entry in use is a colour table in arbitrary order, whose indices mean nothing: read its colours.
    if len(colours) and brightness(0) > BLACK and any(brightness(i) <= BLACK for i in used if i):
        return None
    return Levels(indices, labels=True)


def _over_black(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Brightness composited over black; a mask drawn only in its alpha channel is read from the alpha."""
    if not colour.any() and alpha.min() != alpha.max():
        return alpha.astype(np.uint8)
    return (colour.astype(np.uint16) * alpha // 255).astype(np.uint8)
