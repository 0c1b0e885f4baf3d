"""Decode one image/mask pair into uint8 arrays, converting what can be converted and naming the file
for what cannot.

Pillow decodes every format (TensorFlow's decoders do not read TIFF); grayscale, palette, RGBA and
16-bit files are converted to 8-bit RGB images and single-channel masks instead of being rejected.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from polyp_ray.data.layouts import Pair
from polyp_ray.errors import DataError

# A mask is binarisable when nearly all its pixels sit clearly on one side of the threshold;
# JPEG noise (Kvasir: 0..8 and 246..255) and anti-aliased borders stay far below this share.
AMBIGUOUS_LOW, AMBIGUOUS_HIGH = 32, 223
MAX_AMBIGUOUS_SHARE = 0.10


def read_image(path: Path) -> np.ndarray:
    """An RGB uint8 array [H, W, 3]."""
    return _to_uint8(_open(path), rgb=True, path=path)


def read_mask(path: Path) -> np.ndarray:
    """A single-channel uint8 array [H, W]: 0..255 grey levels, a 0/1 label map scaled to 0/255."""
    mask = _to_uint8(_open(path), rgb=False, path=path)
    if mask.max() == 1:  # a label map with 1 = polyp
        mask = mask * np.uint8(255)
    return mask


def read_pair(pair: Pair, threshold: int) -> tuple[np.ndarray, np.ndarray]:
    """The image [H, W, 3] and the mask binarised at ``> threshold`` as 0/255 [H, W]."""
    image = read_image(pair.image)
    mask = read_mask(pair.mask)
    if image.shape[:2] != mask.shape:
        raise DataError(
            f"{pair.mask}: mask is {mask.shape[1]}x{mask.shape[0]} but its image {pair.image.name} "
            f"is {image.shape[1]}x{image.shape[0]}"
        )
    ambiguous = float(np.mean((mask > AMBIGUOUS_LOW) & (mask < AMBIGUOUS_HIGH)))
    if ambiguous > MAX_AMBIGUOUS_SHARE:
        raise DataError(
            f"{pair.mask}: mask is not binarisable ({ambiguous:.0%} of pixels are mid-grey; "
            "expected black background and white polyp)"
        )
    return image, np.where(mask > threshold, 255, 0).astype(np.uint8)


def _open(path: Path) -> Image.Image:
    try:
        with Image.open(path) as img:
            img.load()  # forces a full decode, so truncated files fail here and not mid-training
            return img.copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(f"{path}: unreadable or truncated image ({err})") from None


def _to_uint8(img: Image.Image, rgb: bool, path: Path) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        wide = np.asarray(img, dtype=np.float64)
        top = 65535.0 if wide.max() > 255 else 255.0
        grey = np.clip(wide * (255.0 / top), 0, 255).astype(np.uint8)
        img = Image.fromarray(grey, mode="L")
    elif img.mode == "F":
        img = Image.fromarray(np.clip(np.asarray(img), 0, 255).astype(np.uint8), mode="L")
    target = "RGB" if rgb else "L"
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA").convert(target)
    elif img.mode != target:
        img = img.convert(target)
    array = np.asarray(img, dtype=np.uint8)
    if array.size == 0:
        raise DataError(f"{path}: image has no pixels")
    return array
