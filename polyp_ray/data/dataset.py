"""From a DataConfig to validated, grouped, split, decoded arrays: the dataset every trial trains on.

``describe_dataset`` is the gate: it finds the pairs, validates every file in one pass (all problems
in one DataError), groups near-duplicates and splits. Decoding and resizing for training happen once
per (dataset, image size, mask threshold): an on-disk cache keyed by the dataset's content hash, so
every later trial and run just maps the arrays.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from polyp_ray.config import DataConfig
from polyp_ray.data.groups import TWIN, cross_split_neighbours, cross_split_twins, find_groups
from polyp_ray.data.layouts import Pair, discover_pairs
from polyp_ray.data.sources import combined_checked, combined_sha256, prefixed, prefixed_pairs, source_names
from polyp_ray.data.split import csv_groups, fixed_split, split_stems
from polyp_ray.data.synthetic import synthetic_dataset
from polyp_ray.data.validation import RULE, Checked, check_pair, coverage_problems, remember, validate_pairs
from polyp_ray.errors import ConfigError, DataError

SPLITS = ("train", "val", "test")
SHOWN_TWINS = 10  # split_warnings lists this many cross-split twins, then a count


def none_grouped(largest_group: int, group_source: str) -> bool:
    """Near-duplicates and video frames were looked for and none found (every group is one image): the
    console and the report then say so, rather than name groups of one as if there were duplicates."""
    return largest_group == 1 and group_source != "csv"


@dataclass
class DatasetInfo:
    """What a dataset is: where, which layout, how many pairs, its content hash, its groups and split."""

    root: str
    layout: str
    n_pairs: int
    sha256: str
    split_seed: int
    split: dict[str, list[str]]
    groups_csv: str | None = None
    group_source: str = "none"  # "csv", "near-duplicates", "near-duplicates + consecutive frames", "none"
    n_groups: int = 0  # 0 when images were split one by one
    largest_group: int = 0
    groups: dict[str, str] = field(default_factory=dict)  # stem -> group name
    cross_split_twins: list[dict] = field(default_factory=list)  # val/test images with a twin in training
    cross_split_neighbours: list[dict] = field(default_factory=list)  # val/test frames, next frame in training
    sources: list[dict] = field(default_factory=list)  # several sources (data/sources.py): each one's own record

    def to_json(self) -> dict:
        return asdict(self)

    def check_batch_size(self, batch_size: int, where: str) -> None:
        """A batch larger than the training split is refused here, before any size is decoded and cached."""
        if batch_size > len(self.split["train"]):
            raise ConfigError(f"{where}: {batch_size} is larger than the training split "
                              f"({len(self.split['train'])} images)")

    def group_summary(self) -> str:
        """One line: how the pairs were grouped before splitting."""
        if not self.n_groups:
            return f"{self.n_pairs} pairs split one by one (no grouping)"
        if none_grouped(self.largest_group, self.group_source):
            return f"{self.n_pairs} pairs, no near-duplicates or video frames found (split image by image)"
        return (f"{self.n_pairs} pairs in {self.n_groups} groups ({self.group_source}; "
                f"largest {self.largest_group})")

    def announce(self) -> None:
        """Before a run: the grouping and split sizes on stdout, each split warning on stderr."""
        sizes = " / ".join(str(len(self.split[k])) for k in ("train", "val", "test"))
        print(f"dataset: {self.group_summary()}; split {sizes} (train / val / test)", flush=True)
        for line in self.split_warnings():
            print(f"warning: {line}", file=sys.stderr, flush=True)

    def split_warnings(self) -> list[str]:
        """Lines to print before a search: near-duplicates across splits, a group that dwarfs the rest."""
        lines = [f"{t['split']} image {t['stem']} has a near-duplicate in training: {t['train_stem']} "
                 f"(thumbnail correlation {t['similarity']:.3f} > {TWIN})"
                 for t in self.cross_split_twins[:SHOWN_TWINS]]
        if len(self.cross_split_twins) > SHOWN_TWINS:
            lines.append(f"... and {len(self.cross_split_twins) - SHOWN_TWINS} more val/test images with a "
                         "near-duplicate in training (the experiment's dataset record lists all: cross_split_twins)")
        lines += [f"{t['split']} frame {t['stem']} has its video neighbour in training: frame {t['train_stem']} "
                  f"(the next exported frame, same scene: correlation {t['similarity']:.3f})"
                  for t in self.cross_split_neighbours[:SHOWN_TWINS]]
        if len(self.cross_split_neighbours) > SHOWN_TWINS:
            lines.append(f"... and {len(self.cross_split_neighbours) - SHOWN_TWINS} more val/test frames with their "
                         "video neighbour in training (the experiment's dataset record lists all: "
                         "cross_split_neighbours)")
        if self.largest_group > self.n_pairs / 2:
            lines.append(f"one group holds {self.largest_group} of {self.n_pairs} pairs ({self.group_source}): "
                         "the split cannot be balanced; check data.groups_csv or set data.group_near_duplicates: false")
        return lines


@dataclass
class SplitArrays:
    """One split at one image size: uint8 images [N, S, S, 3] and 0/1 uint8 masks [N, S, S, 1], plus
    (val and test only) each mask at its image's original size, 0/1 uint8 [H_i, W_i], for scoring."""

    images: np.ndarray
    masks: np.ndarray
    stems: list[str]
    truths: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.stems)


@dataclass
class PreparedData:
    info: DatasetInfo
    image_size: int
    splits: dict[str, SplitArrays]


@dataclass(frozen=True)
class Described:
    """A validated, grouped and split dataset: what ``prepare_data`` needs for any image size."""

    info: DatasetInfo
    pairs: list[Pair]
    checked: Checked


def describe_dataset(config: DataConfig) -> tuple[DatasetInfo, list[Pair]]:
    """Find and validate the pairs (every problem in one DataError), group and split them."""
    described = check_dataset(config)
    return described.info, described.pairs


def check_dataset(config: DataConfig) -> Described:
    """``describe_dataset`` with what validation learnt, to hand to ``prepare_data`` for each image size
    (so a search hashes, loads and splits the dataset once, not once per size)."""
    return Described(*_check(config))


def _check(config: DataConfig) -> tuple[DatasetInfo, list[Pair], Checked]:
    if isinstance(config.path, list):
        return _describe_sources(config, config.path)
    root = dataset_root(config)
    layout, pairs, problems = discover_pairs(root, config.layout, config.image_dir, config.mask_dir)
    if config.limit:
        pairs = pairs[: config.limit]
    sha256, checked, bad_files = validate_pairs(pairs, config)
    problems = sorted([*problems, *bad_files]) + coverage_problems(checked, config, root)
    if problems:
        raise DataError(_problem_report(root, problems))
    if len(pairs) < 3:
        raise DataError(f"{root}: only {len(pairs)} image/mask pairs; need at least 3 to split")
    stems = [p.stem for p in pairs]
    groups, source = None, "none"
    if config.groups_csv:
        groups, source = csv_groups(stems, config), "csv"
    elif config.group_near_duplicates:
        groups, source = find_groups(stems, checked.thumbs)
    split = fixed_split(stems, config) if config.split_files else split_stems(stems, config, groups)
    remember(checked, sha256, config)
    sizes = Counter(groups or [])
    info = DatasetInfo(str(root), layout.name, len(pairs), sha256, config.split_seed, split, config.groups_csv,
                       source, len(sizes), max(sizes.values(), default=0),
                       dict(zip(stems, groups, strict=True)) if groups else {},
                       cross_split_twins(split, stems, checked.thumbs),
                       cross_split_neighbours(split, stems, checked.thumbs))
    return info, pairs, checked


def _describe_sources(config: DataConfig, paths: list[str]) -> tuple[DatasetInfo, list[Pair], Checked]:
    """Each source described on its own (every problem of every source in one DataError, each line naming
    its ``data.path[i]``), then their union with ``<source>/<stem>`` stems and each source's split kept."""
    names = source_names(paths)
    parts, problems = [], []
    for i, path in enumerate(paths):
        try:
            parts.append(_check(dataclasses.replace(config, path=path, split_files={})))
        except DataError as err:
            problems += [f"data.path[{i}] ({path}): {line}" for line in str(err).splitlines()]
    if problems:
        raise DataError("\n".join(problems))
    pairs = [pair for name, (_, own, _) in zip(names, parts, strict=True) for pair in prefixed_pairs(name, own)]
    stems = [p.stem for p in pairs]
    checked = combined_checked([c for _, _, c in parts])
    infos = [info for info, _, _ in parts]
    split = {k: sorted(s for name, info in zip(names, infos, strict=True) for s in prefixed(name, info.split[k]))
             for k in SPLITS}
    if config.split_files:
        split = fixed_split(stems, config)
    groups = {f"{name}/{stem}": f"{name}/{group}" for name, info in zip(names, infos, strict=True)
              for stem, group in info.groups.items()}
    sizes = Counter(groups.values())
    sha256 = combined_sha256(names, [info.sha256 for info in infos])
    records = [{"name": name, **{k: v for k, v in info.to_json().items() if k not in ("split", "groups")}}
               for name, info in zip(names, infos, strict=True)]
    info = DatasetInfo(" + ".join(info.root for info in infos), "+".join(info.layout for info in infos), len(pairs),
                       sha256, config.split_seed, split, config.groups_csv, " / ".join(i.group_source for i in infos),
                       len(sizes), max(sizes.values(), default=0), groups,
                       cross_split_twins(split, stems, checked.thumbs),
                       cross_split_neighbours(split, stems, checked.thumbs), records)
    return info, pairs, checked


def dataset_root(config: DataConfig) -> Path:
    """The folder to read: generated for "synthetic", downloaded once for a public dataset's name
    (polyp_ray.data.public, e.g. "kvasir-seg"), otherwise the path itself."""
    from polyp_ray.data.public import PUBLIC_DATASETS, public_dataset_root

    if isinstance(config.path, list):
        raise ValueError("several sources have no one root: check_dataset() reads each")
    if config.is_synthetic:
        cache = config.resolved_cache_dir()
        return synthetic_dataset(cache, config.synthetic_count, config.synthetic_seed)
    if config.path in PUBLIC_DATASETS:
        return public_dataset_root(config.path, config.resolved_cache_dir())
    return Path(config.path).expanduser().resolve()


def prepare_data(config: DataConfig, image_size: int, described: Described | None = None) -> PreparedData:
    """Validated, decoded, resized and split arrays for one image size (decoded once, then cached);
    val and test also carry their original-size masks (``SplitArrays.truths``). ``described``: the
    dataset as ``check_dataset(config)`` already found it."""
    info, pairs, checked = (described.info, described.pairs, described.checked) if described else _check(config)
    images, masks = decoded_arrays(pairs, info.sha256, image_size, config)
    index = {p.stem: i for i, p in enumerate(pairs)}
    splits = {}
    for name in SPLITS:
        rows = [index[s] for s in info.split[name]]
        truths = None if name == "train" else [checked.truth(i) for i in rows]
        picked = np.array(rows, dtype=np.int64)
        splits[name] = SplitArrays(np.asarray(images[picked]), np.asarray(masks[picked]), info.split[name], truths)
    return PreparedData(info, image_size, splits)


def decoded_arrays(
    pairs: list[Pair], sha256: str, image_size: int, config: DataConfig
) -> tuple[np.ndarray, np.ndarray]:
    """All pairs decoded at ``image_size``, from the cache when present (memory-mapped)."""
    cache = config.resolved_cache_dir() / "decoded"
    key = f"{sha256[:20]}-n{len(pairs)}-s{image_size}-t{config.mask_threshold}-{RULE}"
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
    """Decode and check every pair at ``image_size``; every bad file is reported, each on its own line."""
    images = np.zeros((len(pairs), image_size, image_size, 3), dtype=np.uint8)
    masks = np.zeros((len(pairs), image_size, image_size, 1), dtype=np.uint8)
    problems: list[str] = []

    def load(i: int) -> None:
        image, mask, found = check_pair(pairs[i], threshold)
        if image is None or mask is None:
            problems.extend(found)
            return
        images[i] = np.asarray(Image.fromarray(image).resize((image_size, image_size), Image.Resampling.BILINEAR))
        # Resize the 0/255 mask smoothly, then threshold: borders stay smooth at any scale.
        small = Image.fromarray(mask * np.uint8(255)).resize((image_size, image_size), Image.Resampling.BILINEAR)
        masks[i, ..., 0] = np.asarray(small) > 127

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
