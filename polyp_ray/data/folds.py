"""K grouped folds over the train+val pool, for the job's ``cross_validation`` (the test split stays untouched).

A fold holds whole groups, as the split does (split.py): a near-duplicate or a video neighbour of a
held-out image trained on would make the fold's score a memory test. Groups are dealt, largest first
and in a seeded order among equals, to the fold with the fewest images so far, so the folds differ in
size by at most one group; with one image per group that is a seeded round-robin.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from polyp_ray.errors import ConfigError

POOL = ("train", "val")


def grouped_folds(pool: Sequence[str], groups: Mapping[str, str], folds: int, seed: int) -> list[list[str]]:
    """The held-out stems of each of ``folds`` folds of ``pool`` (sorted); a stem missing from ``groups``
    is its own group. Every group lands whole in one fold; the folds are disjoint and cover the pool."""
    group_of = {stem: groups.get(stem, f"\0{stem}") for stem in pool}  # \0: never a real group's name
    sizes = Counter(group_of.values())
    if len(sizes) < folds:
        raise ValueError(f"{folds} folds need at least {folds} groups; the pool has {len(sizes)}")
    names = sorted(sizes)
    order = [names[k] for k in np.random.default_rng(seed).permutation(len(names))]
    order.sort(key=lambda name: -sizes[name])  # stable: the seeded order decides among equal sizes
    counts = [0] * folds
    fold_of: dict[str, int] = {}
    for name in order:
        target = counts.index(min(counts))
        fold_of[name] = target
        counts[target] += sizes[name]
    return [sorted(s for s in pool if fold_of[group_of[s]] == k) for k in range(folds)]


def fold_splits(split: Mapping[str, list[str]], groups: Mapping[str, str], folds: int, seed: int,
                largest_batch: int = 1) -> list[dict[str, list[str]]]:
    """Each fold as a split: ``train`` the rest of the pool, ``val`` the fold (scored like validation),
    ``test`` the search's own test split. A pool too small for the folds, or a fold's training part
    smaller than the largest batch, is one ConfigError line naming ``cross_validation.folds``."""
    pool = sorted(s for name in POOL for s in split[name])
    try:
        held = grouped_folds(pool, groups, folds, seed)
    except ValueError as err:
        unit = "groups of near-duplicates" if groups else "images"
        raise ConfigError(f"cross_validation.folds: too many folds for the train+val pool ({err}; {unit} are "
                          "kept whole)") from None
    out = []
    for k, part in enumerate(held, 1):
        taken = set(part)
        train = [s for s in pool if s not in taken]
        if len(train) < largest_batch:
            raise ConfigError(f"cross_validation.folds: fold {k} leaves {len(train)} training images, fewer "
                              f"than the largest batch_size ({largest_batch}); use fewer folds")
        out.append({"train": train, "val": part, "test": sorted(split["test"])})
    return out
