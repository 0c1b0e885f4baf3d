from pathlib import Path

import numpy as np
import pytest

from polyp_ray.config import DataConfig
from polyp_ray.data.dataset import split_stems
from polyp_ray.errors import ConfigError, DataError

STEMS = [f"s{i:03d}" for i in range(100)]


def test_split_is_seeded_disjoint_and_complete() -> None:
    config = DataConfig(val_fraction=0.2, test_fraction=0.1, split_seed=3)
    first = split_stems(STEMS, config)
    assert first == split_stems(list(reversed(STEMS)), config)  # order of discovery does not matter
    assert (len(first["train"]), len(first["val"]), len(first["test"])) == (70, 20, 10)
    assert set(first["train"]) | set(first["val"]) | set(first["test"]) == set(STEMS)
    assert not set(first["train"]) & set(first["test"])
    other = split_stems(STEMS, DataConfig(val_fraction=0.2, test_fraction=0.1, split_seed=4))
    assert other["test"] != first["test"]


def test_group_split_keeps_each_group_in_one_split(tmp_path: Path) -> None:
    csv = tmp_path / "groups.csv"
    csv.write_text("stem,video\n" + "".join(f"{s},v{int(s[1:]) // 5}\n" for s in STEMS))
    config = DataConfig(val_fraction=0.2, test_fraction=0.2, groups_csv=str(csv), group_column="video")
    split = split_stems(STEMS, config)
    where = {}
    for name, stems in split.items():
        for stem in stems:
            where.setdefault(int(stem[1:]) // 5, set()).add(name)
    assert all(len(names) == 1 for names in where.values())
    assert all(split.values())


def test_group_csv_errors_name_the_file(tmp_path: Path) -> None:
    csv = tmp_path / "g.csv"
    csv.write_text("stem,other\ns000,a\n")
    config = DataConfig(groups_csv=str(csv), group_column="video")
    with pytest.raises(DataError, match=r"g.csv: no column 'video'"):
        split_stems(STEMS, config)
    csv.write_text("stem,video\ns000,a\n")
    with pytest.raises(DataError, match=r"g.csv: no group for 99 stems"):
        split_stems(STEMS, config)


def test_group_split_sizes_follow_the_image_fractions() -> None:
    # Groups of 1 to 40 images: a split sized in groups (GroupShuffleSplit) would miss by dozens.
    rng = np.random.default_rng(0)
    sizes = [int(s) for s in rng.integers(1, 41, 30)]
    groups = [f"g{g}" for g, size in enumerate(sizes) for _ in range(size)]
    stems = [f"s{i:04d}" for i in range(len(groups))]
    config = DataConfig(val_fraction=0.15, test_fraction=0.15, split_seed=5)
    split = split_stems(stems, config, groups)
    group_of = dict(zip(stems, groups, strict=True))
    assert all(len({group_of[s] for s in split[a]} & {group_of[s] for s in split[b]}) == 0
               for a, b in (("train", "val"), ("train", "test"), ("val", "test")))
    for name in ("val", "test"):
        assert abs(len(split[name]) - 0.15 * len(stems)) <= 20, (name, len(split[name]), len(stems))
    assert split_stems(list(reversed(stems)), config, list(reversed(groups))) == split


def test_singleton_groups_split_like_single_images() -> None:
    config = DataConfig(val_fraction=0.2, test_fraction=0.1, split_seed=3)
    split = split_stems(STEMS, config, STEMS)
    assert (len(split["train"]), len(split["val"]), len(split["test"])) == (70, 20, 10)


def test_a_search_needs_a_validation_split() -> None:
    with pytest.raises(ConfigError) as err:
        DataConfig(val_fraction=0.0).validate("job.yaml")
    assert str(err.value).startswith("job.yaml: data.val_fraction: must be in (0, 1)")
    DataConfig(val_fraction=0.05).validate("job.yaml")


def test_the_dataset_line_says_no_near_duplicates_were_found_rather_than_naming_groups_of_one() -> None:
    # "200 pairs in 200 groups (near-duplicates; largest 1)" read as if there were duplicates.
    from polyp_ray.data.dataset import DatasetInfo

    base = {"root": "r", "layout": "kvasir", "sha256": "x", "split_seed": 0, "split": {}}
    none_found = DatasetInfo(**base, n_pairs=200, n_groups=200, largest_group=1, group_source="near-duplicates")
    assert none_found.group_summary() == "200 pairs, no near-duplicates or video frames found (split image by image)"
    found = DatasetInfo(**base, n_pairs=612, n_groups=31, largest_group=61,
                        group_source="near-duplicates + consecutive frames")
    assert found.group_summary() == "612 pairs in 31 groups (near-duplicates + consecutive frames; largest 61)"
