from pathlib import Path

import pytest

from polyp_ray.data.layouts import LAYOUTS, discover_pairs
from polyp_ray.errors import DataError
from tests.conftest import write_pair


@pytest.mark.parametrize(
    ("layout", "image_dir", "mask_dir"),
    [("kvasir", "images", "masks"), ("clinicdb", "Original", "Ground Truth"), ("giana", "train", "train_labels")],
)
def test_auto_finds_each_known_layout(tmp_path: Path, layout: str, image_dir: str, mask_dir: str) -> None:
    for i, suffix in enumerate([".bmp", ".png", ".jpg", ".tif"]):
        write_pair(tmp_path, image_dir, mask_dir, f"frame{i}", suffix=suffix)
    found, pairs, problems = discover_pairs(tmp_path)
    assert found.name == layout == LAYOUTS[layout].name
    assert [p.stem for p in pairs] == ["frame0", "frame1", "frame2", "frame3"]
    assert {p.image.suffix for p in pairs} == {".bmp", ".png", ".jpg", ".tif"}
    assert problems == []


def test_user_folders_layout(tmp_path: Path) -> None:
    write_pair(tmp_path, "rgb", "gt", "a")
    found, pairs, _ = discover_pairs(tmp_path, image_dir="rgb", mask_dir="gt")
    assert found.name == "folders"
    assert pairs[0].image == tmp_path / "rgb" / "a.png"


def test_pairs_by_stem_not_by_sort_order(tmp_path: Path) -> None:
    # Sorted file names would pair a.png with b_mask... a stem match pairs b with b even across formats.
    write_pair(tmp_path, "images", "masks", "b", suffix=".jpg", mask_suffix=".png")
    write_pair(tmp_path, "images", "masks", "a", suffix=".png", mask_suffix=".tif")
    _, pairs, _ = discover_pairs(tmp_path)
    assert [(p.image.name, p.mask.name) for p in pairs] == [("a.png", "a.tif"), ("b.jpg", "b.png")]


def test_unpaired_files_are_named(tmp_path: Path) -> None:
    write_pair(tmp_path, "images", "masks", "ok")
    write_pair(tmp_path, "images", "masks", "lonely_image")
    write_pair(tmp_path, "images", "masks", "lonely_mask")
    (tmp_path / "masks" / "lonely_image.png").unlink()
    (tmp_path / "images" / "lonely_mask.png").unlink()
    _, pairs, problems = discover_pairs(tmp_path)
    assert [p.stem for p in pairs] == ["ok"]
    assert any("lonely_image.png" in p and "image has no mask" in p for p in problems)
    assert any("lonely_mask.png" in p and "mask has no image" in p for p in problems)


def test_empty_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    write_pair(tmp_path, "x", "masks", "a")
    with pytest.raises(DataError, match=r"images: empty folder"):
        discover_pairs(tmp_path, layout="kvasir")


def test_unknown_layout_and_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown layout 'nope'"):
        write_pair(tmp_path, "images", "masks", "a")
        discover_pairs(tmp_path, layout="nope")
    with pytest.raises(DataError, match="dataset folder not found"):
        discover_pairs(tmp_path / "missing")
    with pytest.raises(DataError, match="no known layout"):
        discover_pairs(tmp_path / "images")


def test_a_folder_of_sub_folders_is_not_called_empty(tmp_path: Path) -> None:
    for video in ("video1", "video2"):
        (tmp_path / "images" / video).mkdir(parents=True)
    write_pair(tmp_path, "x", "masks", "a")
    with pytest.raises(DataError) as err:
        discover_pairs(tmp_path, layout="kvasir")
    assert "images: holds only sub-folders (2: video1/, video2/), no image files" in str(err.value)
    assert "empty folder" not in str(err.value)


def test_a_zip_given_as_the_dataset_is_named_a_zip(tmp_path: Path) -> None:
    import zipfile

    archive = tmp_path / "kvasir-seg.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("Kvasir-SEG/images/a.jpg", b"x")
    with pytest.raises(DataError) as err:
        discover_pairs(archive)
    assert str(err.value).startswith(f"{archive}: a zip archive, not a folder; unpack it")


def test_a_newline_in_a_file_name_is_escaped_on_its_one_line(tmp_path: Path) -> None:
    write_pair(tmp_path, "images", "masks", "ok")
    write_pair(tmp_path, "images", "masks", "bad\nname")
    _, pairs, problems = discover_pairs(tmp_path)
    named = [p for p in problems if "control character" in p]
    assert [p.stem for p in pairs] == ["ok"] and len(named) == 2  # the image and its mask
    assert all("\n" not in p and "bad\\nname.png" in p for p in named)
