"""Near-duplicates and video frames are grouped before splitting, so no scene leaks across splits."""

from pathlib import Path

import numpy as np
import pytest

from polyp_ray.config import DataConfig
from polyp_ray.data import describe_dataset
from polyp_ray.data.groups import cross_split_twins, find_groups, standardised, thumbnail
from polyp_ray.data.synthetic import synthetic_pair, synthetic_video_dataset

SEQUENCES, FRAMES = 8, 8


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_video_dataset(tmp_path_factory.mktemp("video"), SEQUENCES, FRAMES, seed=0)


def _config(root: Path, **settings: object) -> DataConfig:
    return DataConfig(path=str(root), cache_dir=str(root.parent / "cache"), val_fraction=0.25, test_fraction=0.25,
                      **settings)


def test_synthetic_video_leaks_when_split_frame_by_frame(video: Path) -> None:
    info, _ = describe_dataset(_config(video, group_near_duplicates=False))
    assert info.group_source == "none" and info.n_groups == 0
    assert len(info.cross_split_twins) >= 10  # what the grouping is for
    assert any("has a near-duplicate in training" in line for line in info.split_warnings())


def test_synthetic_video_splits_with_no_twin_across_splits(video: Path) -> None:
    info, _ = describe_dataset(_config(video))
    assert info.cross_split_twins == [] and info.split_warnings() == []
    assert info.group_source == "near-duplicates + consecutive frames"
    where = {stem: name for name, stems in info.split.items() for stem in stems}
    for sequence in range(SEQUENCES):
        frames = [str(sequence * FRAMES + k + 1) for k in range(FRAMES)]
        assert len({info.groups[f] for f in frames}) == 1  # a sequence is never cut
        assert len({where[f] for f in frames}) == 1
    assert 2 <= info.n_groups <= SEQUENCES and info.largest_group == max(
        list(info.groups.values()).count(g) for g in set(info.groups.values()))
    assert abs(len(info.split["test"]) - 0.25 * SEQUENCES * FRAMES) <= FRAMES
    saved = info.to_json()
    assert saved["groups"] == info.groups and saved["n_groups"] == info.n_groups


def _scenes(n_scenes: int, frames: int, seed: int = 0) -> np.ndarray:
    """Thumbnails: each scene a random texture, its frames that texture plus a little noise."""
    rng = np.random.default_rng(seed)
    thumbs = []
    for _ in range(n_scenes):
        scene = rng.uniform(40, 220, (32, 32))
        thumbs += [np.clip(scene + rng.normal(0, 25, (32, 32)), 0, 255) for _ in range(frames)]
    return np.array(thumbs, dtype=np.uint8)


def test_frames_link_only_where_stems_are_frame_numbers() -> None:
    thumbs = _scenes(3, 4)
    # Frames of a scene are similar (above the link level) but not twins (below 0.95).
    vectors = standardised(thumbs)
    assert float(vectors[0] @ vectors[1]) < 0.95
    numbered, source = find_groups([str(i + 1) for i in range(12)], thumbs)
    assert source == "near-duplicates + consecutive frames"
    assert numbered == ["1"] * 4 + ["5"] * 4 + ["9"] * 4  # a cut starts a new group
    named, source = find_groups([f"img{i:02d}" for i in range(12)], thumbs)
    assert source == "near-duplicates" and len(set(named)) == 12


def test_twins_group_across_the_dataset_transitively() -> None:
    rng = np.random.default_rng(1)
    base = rng.uniform(30, 220, (32, 32))
    thumbs = np.array([base, base + 2, rng.uniform(30, 220, (32, 32)), base + rng.normal(0, 3, (32, 32))],
                      dtype=np.uint8)
    groups, _ = find_groups(["d", "a", "c", "b"], thumbs)
    assert groups == ["a", "a", "c", "a"]  # named by the group's first stem


def test_the_endoscope_frame_does_not_make_unrelated_images_twins() -> None:
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[0:32, 0:32]
    inside = (np.abs(yy - 15.5) + np.abs(xx - 15.5)) < 20  # an octagon-like field of view on black
    thumbs = np.array([np.where(inside, rng.normal(150, 12, (32, 32)), 0) for _ in range(6)], dtype=np.uint8)
    flat = thumbs.reshape(6, -1).astype(float)
    assert np.corrcoef(flat)[0, 1] > 0.95  # the naive correlation calls them twins
    groups, _ = find_groups([f"u{i}" for i in range(6)], thumbs)
    assert len(set(groups)) == 6


def test_a_users_groups_that_leak_are_reported(video: Path, tmp_path: Path) -> None:
    csv = tmp_path / "groups.csv"  # every frame its own group: the CSV wins, and leaks
    csv.write_text("stem,g\n" + "".join(f"{i + 1},{i}\n" for i in range(SEQUENCES * FRAMES)))
    info, _ = describe_dataset(_config(video, groups_csv=str(csv), group_column="g"))
    assert info.group_source == "csv" and info.n_groups == SEQUENCES * FRAMES
    twins = info.cross_split_twins
    assert twins and all(t["similarity"] > 0.95 and t["train_stem"] in info.split["train"] for t in twins)
    assert {t["split"] for t in twins} <= {"val", "test"}
    first = twins[0]
    assert any(first["stem"] in line and first["train_stem"] in line for line in info.split_warnings())


def test_cross_split_twins_finds_the_closest_training_twin() -> None:
    thumbs = _scenes(2, 1)
    thumbs = np.concatenate([thumbs, thumbs[:1], np.clip(thumbs[:1].astype(int) + 1, 0, 255).astype(np.uint8)])
    split = {"train": ["a", "b", "c"], "val": [], "test": ["d"]}
    found = cross_split_twins(split, ["a", "b", "c", "d"], thumbs)
    assert [(t["stem"], t["split"], t["train_stem"]) for t in found] == [("d", "test", "a")]


@pytest.mark.kvasir
@pytest.mark.slow
def test_kvasir_groups_keep_the_split_sizes(kvasir: Path, tmp_path: Path) -> None:
    grouped, _ = describe_dataset(DataConfig(path=str(kvasir), cache_dir=str(tmp_path)))
    plain, _ = describe_dataset(DataConfig(path=str(kvasir), cache_dir=str(tmp_path), group_near_duplicates=False))
    for name in ("train", "val", "test"):
        assert abs(len(grouped.split[name]) - len(plain.split[name])) <= 3
    assert grouped.n_pairs == 1000 and 980 <= grouped.n_groups < 1000 and grouped.largest_group <= 5
    assert grouped.cross_split_twins == []


@pytest.mark.parametrize("every", [2, 5])
def test_video_exported_every_kth_frame_keeps_neighbours_on_one_side(tmp_path: Path, every: int) -> None:
    root = synthetic_video_dataset(tmp_path, SEQUENCES, FRAMES, seed=3, every=every)
    stems = sorted((p.stem for p in (root / "Original").iterdir()), key=int)
    assert stems[:3] == (["1", "3", "5"] if every == 2 else ["0", "5", "10"])
    config = _config(root)
    info, _ = describe_dataset(config)
    assert info.group_source == "near-duplicates + consecutive frames"
    where = {stem: name for name, members in info.split.items() for stem in members}
    for sequence in range(SEQUENCES):
        scene = stems[sequence * FRAMES:(sequence + 1) * FRAMES]
        for previous, following in zip(scene, scene[1:], strict=False):  # a frame and its video neighbour
            assert where[previous] == where[following], (every, previous, following)
    assert info.cross_split_neighbours == [] and info.split_warnings() == []
    assert info.n_groups >= 3  # a cut is joined only where the two frames happen to look alike
    # Split frame by frame, the same set leaks, and the warning names the frames and their neighbours.
    plain, _ = describe_dataset(DataConfig(**{**config.__dict__, "group_near_duplicates": False}))
    leaks = plain.cross_split_neighbours
    assert leaks and all(t["split"] in ("val", "test") and where_plain(plain, t["train_stem"]) == "train"
                         for t in leaks)
    first = leaks[0]
    assert abs(stems.index(first["stem"]) - stems.index(first["train_stem"])) == 1
    assert any(f"frame {first['stem']} has its video neighbour in training: frame {first['train_stem']}" in line
               for line in plain.split_warnings())


def where_plain(info: object, stem: str) -> str:
    return next(name for name, members in info.split.items() if stem in members)  # type: ignore[attr-defined]


def test_unrelated_images_with_numeric_names_are_not_joined() -> None:
    rng = np.random.default_rng(4)
    thumbs = np.array([thumbnail(synthetic_pair(rng, 96, 80)[0]) for _ in range(40)])
    groups, source = find_groups([str(i + 1) for i in range(40)], thumbs)
    assert source == "near-duplicates" and len(set(groups)) == 40
    textures, _ = find_groups([str(5 * i) for i in range(30)], _scenes(30, 1, seed=5))
    assert len(set(textures)) == 30
