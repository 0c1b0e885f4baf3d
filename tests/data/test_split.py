from pathlib import Path

import pytest

from polyp_ray.config import DataConfig
from polyp_ray.data.dataset import split_stems
from polyp_ray.errors import DataError

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
