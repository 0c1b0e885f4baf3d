"""Cross-validation's folds: grouped like the split, disjoint, covering the train+val pool, seeded."""

from __future__ import annotations

import pytest

from polyp_ray.data.folds import fold_splits, grouped_folds
from polyp_ray.errors import ConfigError

POOL = [f"s{i:02d}" for i in range(20)]
# Video-like groups of 1 to 5 frames: a fold that split one would train on a held-out frame's neighbour.
GROUPS = {s: f"g{[0, 0, 0, 0, 0, 1, 1, 2, 3, 3, 3, 4, 5, 5, 6, 7, 7, 7, 8, 9][i]}" for i, s in enumerate(POOL)}


def test_folds_keep_groups_whole_are_disjoint_and_cover_the_pool() -> None:
    folds = grouped_folds(POOL, GROUPS, 3, seed=0)
    assert len(folds) == 3 and all(folds)
    assert sorted(s for fold in folds for s in fold) == POOL  # disjoint (no repeats) and covering
    for group in set(GROUPS.values()):
        holding = [k for k, fold in enumerate(folds) if any(GROUPS[s] == group for s in fold)]
        assert len(holding) == 1, f"group {group} straddles folds {holding}"
    sizes = sorted(len(f) for f in folds)
    assert sizes[-1] - sizes[0] <= 5  # balanced to within the largest group


def test_folds_are_seeded() -> None:
    assert grouped_folds(POOL, GROUPS, 4, seed=3) == grouped_folds(list(reversed(POOL)), GROUPS, 4, seed=3)
    assert any(grouped_folds(POOL, {}, 4, seed=s) != grouped_folds(POOL, {}, 4, seed=0) for s in range(1, 5))


def test_ungrouped_images_are_dealt_evenly() -> None:
    folds = grouped_folds(POOL, {}, 3, seed=0)
    assert sorted(len(f) for f in folds) == [6, 7, 7]
    assert sorted(s for f in folds for s in f) == POOL


def test_fold_splits_hold_out_each_fold_once_and_never_touch_test() -> None:
    split = {"train": POOL[:14], "val": POOL[14:], "test": ["t1", "t0"]}
    folds = fold_splits(split, GROUPS, 2, seed=0)
    assert [sorted(f["train"] + f["val"]) for f in folds] == [POOL, POOL]
    assert sorted(folds[0]["val"] + folds[1]["val"]) == POOL
    assert all(f["test"] == ["t0", "t1"] for f in folds)


def test_too_many_folds_for_the_groups_is_one_line_naming_the_key() -> None:
    split = {"train": POOL[:14], "val": POOL[14:], "test": ["t0"]}
    with pytest.raises(ConfigError) as err:
        fold_splits(split, GROUPS, 11, seed=0)
    assert str(err.value).startswith("cross_validation.folds: ") and "\n" not in str(err.value)
    assert "the pool has 10" in str(err.value)
    with pytest.raises(ConfigError, match=r"^cross_validation\.folds: fold 1 leaves \d+ training images"):
        fold_splits(split, {}, 2, seed=0, largest_batch=16)
