"""One pass over every pair: read, decode and check it, and keep what the later steps need (sizes, mask
coverage, grey thumbnails for grouping, the binarised masks at their original size for scoring), so
nothing decodes the whole dataset again for checking, grouping or scoring.

Every problem of every file is collected, one line each naming the file, never only the first: the
user fixes the dataset in one round. The result is cached by the dataset's content hash, written only
after the whole dataset passed.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from polyp_ray.config import DataConfig
from polyp_ray.data.groups import THUMB, thumbnail
from polyp_ray.data.images import file_problem, open_image, to_rgb
from polyp_ray.data.layouts import Pair
from polyp_ray.data.masks import binarise, mask_levels
from polyp_ray.errors import DataError

# Part of every cache key: bump it when the mask rule or what is cached changes, so that arrays made
# by an older rule are never read back (the decode cache in dataset.py uses it too).
RULE = "m3"  # m3: files turned upright by their EXIF Orientation tag
MOSTLY = 0.5  # "mostly empty / mostly full": more than this share of the masks


@dataclass
class Checked:
    """What the validation pass learnt, row i for pair i (rows of failed pairs hold zeros)."""

    shapes: np.ndarray  # [N, 2] int64: each mask's (height, width), its image's too
    coverage: np.ndarray  # [N] float32: the polyp share of each mask; -1 where the pair failed
    thumbs: np.ndarray  # [N, 32, 32] uint8 grey thumbnails of the images
    bits: np.ndarray  # uint8: every binarised mask, np.packbits-ed, one after the other
    offsets: np.ndarray  # [N + 1] int64: mask i is bits[offsets[i]:offsets[i + 1]]

    def truth(self, i: int) -> np.ndarray:
        """Pair i's mask at its original size, binarised by the mask rule: 0/1 uint8 [H, W]."""
        height, width = (int(v) for v in self.shapes[i])
        packed = self.bits[self.offsets[i]:self.offsets[i + 1]]
        return np.unpackbits(packed, count=height * width).reshape(height, width)


def check_pair(pair: Pair, threshold: int, skip: frozenset[Path] = frozenset()
               ) -> tuple[np.ndarray | None, np.ndarray | None, list[str]]:
    """The RGB image, the 0/1 mask and every problem of the pair (images None when there is one).

    Files in ``skip`` already failed to read and are not opened again.
    """
    problems: list[str] = []
    image = levels = None
    if pair.image not in skip:
        try:
            image = to_rgb(open_image(pair.image), pair.image)
        except DataError as err:
            problems.append(str(err))
    if pair.mask not in skip:
        try:
            levels = mask_levels(open_image(pair.mask), pair.mask)
        except DataError as err:
            problems.append(str(err))
    if levels is None:
        return None, None, problems
    height, width = levels.values.shape
    if image is not None and image.shape[:2] != (height, width):
        turned = ("; one is the other turned by 90 degrees: a file stored rotated without its EXIF Orientation tag?"
                  if image.shape[:2] == (width, height) else "")
        problems.append(f"{pair.mask}: mask is {width}x{height} but its image {pair.image.name} "
                        f"is {image.shape[1]}x{image.shape[0]} (each turned upright by its EXIF orientation){turned}")
    mask, problem = binarise(levels, threshold)
    if problem:
        problems.append(f"{pair.mask}: {problem}")
    if problems:
        return None, None, problems
    return image, mask, []


def hash_pairs(pairs: list[Pair]) -> tuple[str, dict[Path, str]]:
    """The dataset's content hash (stems and bytes, in stem order) and a problem line per unreadable file."""
    digest = hashlib.sha256()
    problems: dict[Path, str] = {}
    for pair in pairs:
        digest.update(pair.stem.encode())
        for path in (pair.image, pair.mask):
            try:
                data = path.read_bytes()
            except OSError as err:
                problems[path] = f"{path}: {file_problem(path, err)}"
                continue
            if not data:
                problems[path] = f"{path}: empty file (0 bytes)"
            digest.update(data)
    return digest.hexdigest(), problems


def validate_pairs(pairs: list[Pair], config: DataConfig) -> tuple[str, Checked, list[str]]:
    """The content hash, what the pass learnt, and one line per problem of any file (none: usable)."""
    sha256, unreadable = hash_pairs(pairs)
    cached = _cache_file(config, sha256, len(pairs))
    if not unreadable and cached.exists():
        try:
            with np.load(cached) as stored:
                return sha256, Checked(**{name: stored[name] for name in stored.files}), []
        except (OSError, ValueError, TypeError, KeyError):  # a damaged or foreign cache file: check again
            pass
    checked, problems = _check_all(pairs, config.mask_threshold, frozenset(unreadable))
    return sha256, checked, sorted([*unreadable.values(), *problems])


def coverage_problems(checked: Checked, config: DataConfig, root: Path) -> list[str]:
    """A line if most masks are empty, or most are more polyp than not, unless the config allows it."""
    coverage = checked.coverage[checked.coverage >= 0]
    n, problems = len(coverage), []
    empty, full = int(np.sum(coverage == 0)), int(np.sum(coverage > 0.5))
    if n and empty > MOSTLY * n and not config.allow_empty_masks:
        problems.append(f"{root}: {empty} of {n} masks are empty (no polyp pixel): is this the mask folder? "
                        "If polyp-free frames are deliberate, set data.allow_empty_masks: true")
    if n and full > MOSTLY * n and not config.allow_full_masks:
        problems.append(f"{root}: {full} of {n} masks mark more than half of their image as polyp: inverted "
                        "(polyp black on white)? If deliberate, set data.allow_full_masks: true")
    return problems


def remember(checked: Checked, sha256: str, config: DataConfig) -> None:
    """Cache what a passing validation learnt (a read-only cache folder just means no cache)."""
    path = _cache_file(config, sha256, len(checked.coverage))
    if path.exists():
        return
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as out:
            np.savez_compressed(out, shapes=checked.shapes, coverage=checked.coverage, thumbs=checked.thumbs,
                                bits=checked.bits, offsets=checked.offsets)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)


def _cache_file(config: DataConfig, sha256: str, n: int) -> Path:
    return config.resolved_cache_dir() / "checked" / f"{sha256[:20]}-n{n}-t{config.mask_threshold}-{RULE}.npz"


def _check_all(pairs: list[Pair], threshold: int, skip: frozenset[Path]) -> tuple[Checked, list[str]]:
    n = len(pairs)
    shapes = np.zeros((n, 2), dtype=np.int64)
    coverage = np.full(n, -1.0, dtype=np.float32)
    thumbs = np.zeros((n, THUMB, THUMB), dtype=np.uint8)
    packed = [np.zeros(0, dtype=np.uint8)] * n
    problems: list[list[str]] = [[] for _ in range(n)]

    def check(i: int) -> None:
        image, mask, found = check_pair(pairs[i], threshold, skip)
        if image is None or mask is None:
            problems[i] = found
            return
        shapes[i] = mask.shape
        coverage[i] = mask.mean()
        thumbs[i] = thumbnail(image)
        packed[i] = np.packbits(mask)

    # Pillow warns (from the header) about images above its own limit before ours refuses them.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            list(pool.map(check, range(n)))
    offsets = np.zeros(n + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(p) for p in packed])
    checked = Checked(shapes, coverage, thumbs, np.concatenate([np.zeros(0, dtype=np.uint8), *packed]), offsets)
    return checked, [line for lines in problems for line in lines]
