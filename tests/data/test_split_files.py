"""``data.split_files``: a published split reproduced exactly, every problem of the lists one line, and the
grouping check still warning about near-twins the fixed split puts on both sides."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from polyp_ray.config import DataConfig
from polyp_ray.data.dataset import check_dataset
from polyp_ray.errors import ConfigError, DataError
from tests.conftest import search_command, write_pair

TRAIN = [f"img{i:02d}" for i in range(8)]
VAL, TEST = ["img08", "img09"], ["img10", "img11"]


def _lists(folder: Path, train: list[str], val: list[str], test: list[str]) -> dict[str, str]:
    files = {}
    for name, stems in (("train", train), ("val", val), ("test", test)):
        path = folder / f"{name}.txt"
        path.write_text("# a published split\n" + "\n".join(stems) + "\n\n")
        files[name] = str(path)
    return files


def test_the_listed_split_is_reproduced_exactly(small_dataset: Path, tmp_path: Path) -> None:
    # A list may name files rather than stems (as published lists often do): read as their stems.
    files = _lists(tmp_path, [f"images/{s}.png" for s in TRAIN[::-1]], VAL, TEST)
    info = check_dataset(DataConfig(path=str(small_dataset), split_files=files)).info
    assert info.split == {"train": TRAIN, "val": VAL, "test": TEST}
    # The seed and the fractions do not move it.
    again = check_dataset(DataConfig(path=str(small_dataset), split_files=files, split_seed=7, val_fraction=0.4)).info
    assert again.split == info.split


def test_a_bad_list_gives_one_line_per_problem(small_dataset: Path, tmp_path: Path) -> None:
    files = _lists(tmp_path, TRAIN[:6] + ["ghost", "img08"], VAL, ["img10"])  # img07, img06, img11 unlisted
    with pytest.raises(DataError) as caught:
        check_dataset(DataConfig(path=str(small_dataset), split_files=files))
    lines = str(caught.value).splitlines()
    assert lines == [
        f"data.split_files.train: {files['train']} line 8: 'ghost' is not in the dataset",
        f"data.split_files.val: {files['val']} line 2: 'img08' is already listed in train",
    ] + [
        f"data.split_files: {stem!r} is in the dataset but in no split file" for stem in ("img06", "img07", "img11")]
    missing = {**files, "test": str(tmp_path / "nope.txt")}
    with pytest.raises(DataError, match=r"(?m)^data.split_files.test: .*nope.txt: cannot be read"):
        check_dataset(DataConfig(path=str(small_dataset), split_files=missing))
    with pytest.raises(ConfigError, match="data.split_files: needs exactly the keys train, val, test"):
        DataConfig(split_files={"train": "a", "test": "b"}).validate("job.yaml")


def test_the_grouping_check_still_warns_across_a_fixed_split(small_dataset: Path, tmp_path: Path) -> None:
    write_pair(small_dataset, "images", "masks", "twin03", seed=3)  # the same image as img03
    files = _lists(tmp_path, TRAIN, VAL, [*TEST, "twin03"])
    info = check_dataset(DataConfig(path=str(small_dataset), split_files=files)).info
    assert "twin03" in info.split["test"] and "img03" in info.split["train"]
    assert any("test image twin03 has a near-duplicate in training: img03" in line for line in info.split_warnings())


def test_the_cli_says_each_problem_and_exits_2(small_dataset: Path, tmp_path: Path) -> None:
    files = _lists(tmp_path, TRAIN, VAL, ["ghost"])
    (tmp_path / "space.yaml").write_text("model: {choices: [unet]}\n")
    job = {"searchspace": "space.yaml", "data": {"path": str(small_dataset), "split_files": files}}
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job))
    proc = subprocess.run(search_command("--job", str(tmp_path / "job.yaml"), "--debug"), cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"data.split_files.test: {files['test']} line 2: 'ghost' is not in the dataset" in proc.stderr
    assert "data.split_files: 'img10' is in the dataset but in no split file" in proc.stderr
