"""A seeded train/val/test split of the stems; with groups, every group lands whole in one split.

Groups come from the user's CSV (``data.groups_csv``, which wins) or from ``groups.find_groups``.
scikit-learn's GroupShuffleSplit sizes its test side in groups, not images: with CVC-ClinicDB's video
groups of 1 to 60 frames the test split's size would be a lottery. Here whole groups, in a seeded
order, are taken while they fit in the split's share of the images, then the one group that brings
it closest; with one image per group this gives the sizes of an ungrouped split (give or take one).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from polyp_ray.config import DataConfig
from polyp_ray.errors import DataError


def split_stems(stems: Sequence[str], config: DataConfig, groups: Sequence[str] | None = None
                ) -> dict[str, list[str]]:
    """A seeded split; ``groups`` (one per stem, in the order of ``stems``) are kept whole.

    Without ``groups`` the CSV of ``data.groups_csv`` is read when given; otherwise images are split
    one by one.
    """
    if groups is not None and len(groups) != len(stems):
        raise ValueError(f"{len(groups)} groups for {len(stems)} stems")
    group_of = dict(zip(stems, groups, strict=True)) if groups is not None else None
    stems = sorted(stems)
    if group_of is None and config.groups_csv:
        group_of = dict(zip(stems, csv_groups(stems, config), strict=True))
    if group_of is not None and len(set(group_of.values())) == len(group_of):
        group_of = None  # one image per group: split exactly as an ungrouped dataset always was
    rest, test = _split_off(stems, group_of, config.test_fraction, config.split_seed)
    share = config.val_fraction / (1.0 - config.test_fraction)
    rest, val = _split_off(rest, group_of, share, config.split_seed + 1)
    if not rest or not test or not val:
        unit = "groups of near-duplicates" if group_of else "pairs"
        sizes = f"train {len(rest)}, val {len(val)}, test {len(test)}"
        raise DataError(f"{config.path}: too few {unit} for the requested split ({sizes} of {len(stems)} pairs)")
    return {"train": sorted(rest), "val": sorted(val), "test": sorted(test)}


def _split_off(stems: list[str], group_of: dict[str, str] | None, fraction: float, seed: int
               ) -> tuple[list[str], list[str]]:
    if group_of is None:
        keep, taken = train_test_split(stems, test_size=fraction, random_state=seed)
        return list(keep), list(taken)
    sizes = Counter(group_of[s] for s in stems)
    names = sorted(sizes)
    order = [names[k] for k in np.random.default_rng(seed).permutation(len(names))]
    target, count = fraction * len(stems), 0
    chosen: set[str] = set()
    for name in order:  # whole groups that fit, in a seeded order
        if count + sizes[name] <= target:
            chosen.add(name)
            count += sizes[name]
    rest = [name for name in order if name not in chosen]
    if rest:  # then the one group that brings the count closest to the target, if any does
        best = min(rest, key=lambda name: abs(count + sizes[name] - target))
        if abs(count + sizes[best] - target) < abs(count - target):
            chosen.add(best)
    return [s for s in stems if group_of[s] not in chosen], [s for s in stems if group_of[s] in chosen]


def csv_groups(stems: Sequence[str], config: DataConfig) -> list[str]:
    """The group of each stem from ``data.groups_csv`` (column ``stem`` and ``data.group_column``)."""
    path = Path(str(config.groups_csv)).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: groups CSV not found")
    try:
        table = pd.read_csv(path, dtype=str)
    except (ValueError, OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not a readable CSV ({err})") from None
    for column in ("stem", config.group_column):
        if column not in table.columns:
            raise DataError(f"{path}: no column {column!r} (columns: {list(table.columns)})")
    mapping = dict(zip(table["stem"], table[config.group_column], strict=True))
    missing = [s for s in stems if s not in mapping or pd.isna(mapping[s])]
    if missing:
        raise DataError(f"{path}: no group for {len(missing)} stems, e.g. {missing[0]!r}")
    return [str(mapping[s]) for s in stems]


def fixed_split(stems: Sequence[str], config: DataConfig) -> dict[str, list[str]]:
    """The split ``data.split_files`` lists, exactly: one stem a line in each file (blank lines and lines
    starting with # aside; a file name or a path is read as its stem, so "images/cju0q.png" is "cju0q").
    Every problem is one line of one DataError: a file missing, a listed stem the dataset lacks, a stem
    listed twice, a stem of the dataset that no file lists."""
    present = set(stems)
    where: dict[str, str] = {}
    problems: list[str] = []
    split: dict[str, list[str]] = {}
    for name in ("train", "val", "test"):
        key = f"data.split_files.{name}"
        path = Path(config.split_files[name]).expanduser()
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            problems.append(f"{key}: {path}: cannot be read ({getattr(err, 'strerror', None) or err})")
            continue
        split[name] = []
        for number, line in enumerate(lines, 1):
            entry = line.strip()
            if not entry or entry.startswith("#"):
                continue
            stem = entry if entry in present else Path(entry).stem
            if stem not in present:
                problems.append(f"{key}: {path} line {number}: {entry!r} is not in the dataset")
            elif stem in where:
                problems.append(f"{key}: {path} line {number}: {stem!r} is already listed in {where[stem]}")
            else:
                where[stem] = name
                split[name].append(stem)
        if not split[name] and not any(p.startswith(key) for p in problems):
            problems.append(f"{key}: {path}: lists no stem")
    if len(split) == 3:
        problems += [f"data.split_files: {stem!r} is in the dataset but in no split file" for stem in sorted(present)
                     if stem not in where]
    if problems:
        raise DataError("\n".join(problems))
    return {name: sorted(listed) for name, listed in split.items()}
