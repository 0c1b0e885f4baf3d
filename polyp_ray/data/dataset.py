"""From a DataConfig to validated, split, decoded arrays: the dataset every trial trains on.

Decoding and resizing happen once per (dataset, image size, threshold): the result is an on-disk cache
keyed by the dataset's content hash, so every later trial and run just maps the arrays.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.model_selection import GroupShuffleSplit, train_test_split

from polyp_ray.config import DataConfig
from polyp_ray.data.images import read_pair
from polyp_ray.data.layouts import Pair, discover_pairs
from polyp_ray.data.synthetic import synthetic_dataset
from polyp_ray.errors import DataError

SPLITS = ("train", "val", "test")


@dataclass
class DatasetInfo:
    """What a dataset is: where, which layout, how many pairs, its content hash and its split."""

    root: str
    layout: str
    n_pairs: int
    sha256: str
    split_seed: int
    split: dict[str, list[str]]
    groups_csv: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class SplitArrays:
    """One split at one image size: uint8 images [N, S, S, 3] and 0/1 uint8 masks [N, S, S, 1]."""

    images: np.ndarray
    masks: np.ndarray
    stems: list[str]

    def __len__(self) -> int:
        return len(self.stems)


@dataclass
class PreparedData:
    info: DatasetInfo
    image_size: int
    splits: dict[str, SplitArrays]


def describe_dataset(config: DataConfig) -> tuple[DatasetInfo, list[Pair]]:
    """Find the pairs, refuse unpaired files, hash the content and split it (no decoding yet)."""
    root = dataset_root(config)
    layout, pairs, problems = discover_pairs(root, config.layout, config.image_dir, config.mask_dir)
    if problems:
        raise DataError(_problem_report(root, problems))
    if config.limit:
        pairs = pairs[: config.limit]
    if len(pairs) < 3:
        raise DataError(f"{root}: only {len(pairs)} image/mask pairs; need at least 3 to split")
    split = split_stems([p.stem for p in pairs], config)
    info = DatasetInfo(str(root), layout.name, len(pairs), fingerprint(pairs), config.split_seed, split,
                       config.groups_csv)
    return info, pairs


def dataset_root(config: DataConfig) -> Path:
    if config.is_synthetic:
        cache = config.resolved_cache_dir()
        return synthetic_dataset(cache, config.synthetic_count, config.synthetic_seed)
    return Path(config.path).expanduser().resolve()


def fingerprint(pairs: list[Pair]) -> str:
    digest = hashlib.sha256()
    for pair in pairs:
        digest.update(pair.stem.encode())
        for path in (pair.image, pair.mask):
            digest.update(path.read_bytes())
    return digest.hexdigest()


def split_stems(stems: list[str], config: DataConfig) -> dict[str, list[str]]:
    """A seeded train/val/test split; with groups, no group straddles two splits."""
    stems = sorted(stems)
    groups = _groups(stems, config) if config.groups_csv else None
    rest, test = _split_off(stems, groups, config.test_fraction, config.split_seed)
    val: list[str] = []
    if config.val_fraction > 0:
        share = config.val_fraction / (1.0 - config.test_fraction)
        rest_groups = [groups[stems.index(s)] for s in rest] if groups else None
        rest, val = _split_off(rest, rest_groups, share, config.split_seed + 1)
    if not rest or not test:
        raise DataError(f"{config.path}: too few pairs ({len(stems)}) for the requested split")
    return {"train": sorted(rest), "val": sorted(val), "test": sorted(test)}


def _split_off(
    stems: list[str], groups: list[str] | None, fraction: float, seed: int
) -> tuple[list[str], list[str]]:
    if groups is None:
        keep, taken = train_test_split(stems, test_size=fraction, random_state=seed)
        return list(keep), list(taken)
    splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
    keep_idx, taken_idx = next(splitter.split(stems, groups=groups))
    return [stems[i] for i in keep_idx], [stems[i] for i in taken_idx]


def _groups(stems: list[str], config: DataConfig) -> list[str]:
    path = Path(str(config.groups_csv)).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: groups CSV not found")
    table = pd.read_csv(path, dtype=str)
    for column in ("stem", config.group_column):
        if column not in table.columns:
            raise DataError(f"{path}: no column {column!r} (columns: {list(table.columns)})")
    mapping = dict(zip(table["stem"], table[config.group_column], strict=True))
    missing = [s for s in stems if s not in mapping]
    if missing:
        raise DataError(f"{path}: no group for {len(missing)} stems, e.g. {missing[0]!r}")
    return [mapping[s] for s in stems]


def prepare_data(config: DataConfig, image_size: int) -> PreparedData:
    """Validated, decoded, resized and split arrays for one image size (decoded once, then cached)."""
    info, pairs = describe_dataset(config)
    images, masks = decoded_arrays(pairs, info.sha256, image_size, config)
    index = {p.stem: i for i, p in enumerate(pairs)}
    splits = {}
    for name in SPLITS:
        rows = np.array([index[s] for s in info.split[name]], dtype=np.int64)
        splits[name] = SplitArrays(np.asarray(images[rows]), np.asarray(masks[rows]), info.split[name])
    return PreparedData(info, image_size, splits)


def decoded_arrays(
    pairs: list[Pair], sha256: str, image_size: int, config: DataConfig
) -> tuple[np.ndarray, np.ndarray]:
    """All pairs decoded at ``image_size``, from the cache when present (memory-mapped)."""
    cache = config.resolved_cache_dir() / "decoded"
    key = f"{sha256[:20]}-n{len(pairs)}-s{image_size}-t{config.mask_threshold}"
    image_file, mask_file = cache / f"{key}-images.npy", cache / f"{key}-masks.npy"
    if image_file.exists() and mask_file.exists():
        return np.load(image_file, mmap_mode="r"), np.load(mask_file, mmap_mode="r")
    images, masks = decode_all(pairs, image_size, config.mask_threshold)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        _save_atomic(image_file, images)
        _save_atomic(mask_file, masks)
    except OSError:  # a read-only home: carry on without the cache
        pass
    return images, masks


def decode_all(pairs: list[Pair], image_size: int, threshold: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode and check every pair; every bad file is reported, each on its own line."""
    images = np.zeros((len(pairs), image_size, image_size, 3), dtype=np.uint8)
    masks = np.zeros((len(pairs), image_size, image_size, 1), dtype=np.uint8)
    problems: list[str] = []

    def load(i: int) -> None:
        try:
            image, mask = read_pair(pairs[i], threshold)
        except DataError as err:
            problems.append(str(err))
            return
        images[i] = np.asarray(Image.fromarray(image).resize((image_size, image_size), Image.Resampling.BILINEAR))
        # Resize the 0/255 mask smoothly, then threshold: borders stay smooth at any scale.
        small = np.asarray(Image.fromarray(mask).resize((image_size, image_size), Image.Resampling.BILINEAR))
        masks[i, ..., 0] = small > 127

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        list(pool.map(load, range(len(pairs))))
    if problems:
        raise DataError(_problem_report(pairs[0].image.parent.parent, sorted(problems)))
    return images, masks


def _problem_report(root: Path, problems: list[str]) -> str:
    head = f"{root}: {len(problems)} problem{'s' if len(problems) > 1 else ''} in the dataset"
    return "\n".join([head, *problems])


def _save_atomic(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


def write_dataset_json(info: DatasetInfo, path: Path) -> None:
    path.write_text(json.dumps(info.to_json(), indent=1))
