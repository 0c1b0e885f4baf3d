"""Group near-duplicate images so that a split cannot put one scene on both sides, and check a split.

Video frames and re-used shots make a random split leak: a test frame whose neighbour was trained on
is not an unseen image. The similarity is deliberately cheap, so it runs on every dataset: the
Pearson correlation of 32x32 grey thumbnails (made in the validation pass and cached with it), over
the pixels that are not the endoscope's fixed black frame (dark in most images of the dataset; left
in, that shared octagon alone lifts unrelated CVC-ClinicDB frames above 0.95).

- near-twins: correlation > ``TWIN`` (0.95), joined transitively (union-find);
- video frames: where every stem is a whole number (CVC-ClinicDB, CVC-ColonDB, ETIS, GIANA, the
  numbering follows the recording), each frame is joined to the next one in number order, whatever
  the step (users export every 2nd or 5th frame: 1, 3, 5 or 0, 5, 10), when they are more alike than
  two unrelated frames of the dataset typically are (correlation > ``FRAME_LINK`` after removing the
  dataset's mean thumbnail, which puts unrelated pairs around 0). A cut to another scene falls
  below that and starts a new group; camera motion inside a sequence mostly does not.

  That low bar is only safe where the numbering does follow a recording, so it is first checked on
  the whole set (``numbered_like_video``): the median correlation of number-order neighbours must
  exceed the 75th percentile of that of pairs drawn at random. Unrelated images that merely have
  numeric names fail it (their neighbours are as alike as random pairs) and are never joined by
  number; CVC-ClinicDB passes it with every 1st to every 10th frame kept (bench/bench_groups.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from PIL import Image

THUMB = 32
TWIN = 0.95
FRAME_LINK = 0.0
VIDEO_QUANTILE = 0.75  # neighbours' median correlation must beat this quantile of random pairs'
NULL_PAIRS = 20000  # random pairs drawn for that comparison (seeded)
FIXED_FRAME_GREY = 20  # a thumbnail pixel whose median over the dataset is this dark is the scope's frame
BLOCK = 1024  # rows per block of the similarity matrix: memory stays ~4 MB x N


def thumbnail(image: np.ndarray) -> np.ndarray:
    """The 32x32 grey uint8 thumbnail of an RGB uint8 image."""
    small = Image.fromarray(image).convert("L").resize((THUMB, THUMB), Image.Resampling.BILINEAR)
    return np.asarray(small, dtype=np.uint8)


def content_pixels(thumbs: np.ndarray) -> np.ndarray:
    """A boolean mask over the flattened thumbnail: the pixels outside the dataset's fixed dark frame."""
    flat = thumbs.reshape(len(thumbs), -1)
    keep = np.median(flat, axis=0) > FIXED_FRAME_GREY
    return keep if keep.mean() >= 0.25 else np.ones_like(keep)


def standardised(thumbs: np.ndarray, remove_mean: bool = False) -> np.ndarray:
    """Rows of zero mean and unit norm over the content pixels: their dot products are correlations."""
    flat = thumbs.reshape(len(thumbs), -1).astype(np.float32)[:, content_pixels(thumbs)]
    if remove_mean:
        flat -= flat.mean(axis=0)
    flat -= flat.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(flat, axis=1, keepdims=True)
    return np.divide(flat, norm, out=np.zeros_like(flat), where=norm > 0)  # a flat image matches nothing


def similar_pairs(rows: np.ndarray, cols: np.ndarray, threshold: float = TWIN) -> Iterator[tuple[int, int, float]]:
    """(row, col, correlation) for every pair above ``threshold``, a block of rows at a time."""
    for start in range(0, len(rows), BLOCK):
        block = rows[start:start + BLOCK] @ cols.T
        for i, j in zip(*np.nonzero(block > threshold), strict=True):
            yield start + int(i), int(j), float(block[i, j])


def frame_numbers(stems: list[str]) -> list[int] | None:
    """The stems as frame numbers when every one is a whole number, else None."""
    if not stems or not all(s.isdigit() for s in stems):
        return None
    return [int(s) for s in stems]


def video_neighbours(stems: list[str], thumbs: np.ndarray) -> list[tuple[int, int, float]]:
    """(i, j, correlation) for each frame i and the next exported frame j (next in number order) that
    look alike (correlation > ``FRAME_LINK``), where the stems number a recording; else []."""
    numbers = frame_numbers(stems)
    if numbers is None or len(stems) < 3:
        return []
    order = sorted(range(len(stems)), key=lambda i: (numbers[i], stems[i]))
    scenes = standardised(thumbs, remove_mean=True)
    following = np.einsum("ij,ij->i", scenes[order[:-1]], scenes[order[1:]])
    if not numbered_like_video(scenes, following):
        return []
    return [(order[k], order[k + 1], float(r)) for k, r in enumerate(following) if r > FRAME_LINK]


def numbered_like_video(scenes: np.ndarray, following: np.ndarray) -> bool:
    """Whether number-order neighbours are far more alike than random pairs (see the module's notes)."""
    rng = np.random.default_rng(0)
    a = rng.integers(0, len(scenes), NULL_PAIRS)
    b = (a + rng.integers(2, len(scenes), NULL_PAIRS)) % len(scenes)  # never a frame with itself
    random_pairs = np.einsum("ij,ij->i", scenes[a], scenes[b])
    return bool(np.median(following) > np.quantile(random_pairs, VIDEO_QUANTILE))


def find_groups(stems: list[str], thumbs: np.ndarray) -> tuple[list[str], str]:
    """A group name per stem (its group's first stem) and how the groups were found."""
    parent = list(range(len(stems)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(i: int, j: int) -> None:
        parent[root(i)] = root(j)

    twins = standardised(thumbs)
    for i, j, _ in similar_pairs(twins, twins):
        if i < j:
            join(i, j)
    source = "near-duplicates"
    links = video_neighbours(stems, thumbs)
    if links:
        source = "near-duplicates + consecutive frames"
        for i, j, _ in links:
            join(i, j)
    members: dict[int, list[str]] = {}
    for i, stem in enumerate(stems):
        members.setdefault(root(i), []).append(stem)
    name = {r: min(group, key=_stem_order) for r, group in members.items()}
    return [name[root(i)] for i in range(len(stems))], source


def cross_split_neighbours(split: dict[str, list[str]], stems: list[str], thumbs: np.ndarray) -> list[dict]:
    """Every val/test frame whose video neighbour (the previous or next exported frame, alike enough
    to be joined by ``find_groups``) is in training, with the more alike of the two."""
    where = {s: name for name, members in split.items() for s in members}
    best: dict[str, tuple[str, float]] = {}
    for i, j, r in video_neighbours(stems, thumbs):
        for held, other in ((stems[i], stems[j]), (stems[j], stems[i])):
            if where.get(held) in ("val", "test") and where.get(other) == "train" and r > best.get(held, ("", -2.0))[1]:
                best[held] = (other, r)
    return [{"stem": s, "split": where[s], "train_stem": t, "similarity": round(r, 4)}
            for s, (t, r) in sorted(best.items(), key=lambda item: _stem_order(item[0]))]


def cross_split_twins(split: dict[str, list[str]], stems: list[str], thumbs: np.ndarray) -> list[dict]:
    """Every val/test image with a near-twin (correlation > TWIN) in training, with its closest one."""
    index = {s: i for i, s in enumerate(stems)}
    vectors = standardised(thumbs)
    train = vectors[[index[s] for s in split["train"]]]
    found = []
    for name in ("val", "test"):
        held = split.get(name, [])
        if not held or not len(train):
            continue
        best: dict[int, tuple[int, float]] = {}
        for i, j, r in similar_pairs(vectors[[index[s] for s in held]], train):
            if r > best.get(i, (0, -1.0))[1]:
                best[i] = (j, r)
        found += [{"stem": held[i], "split": name, "train_stem": split["train"][j], "similarity": round(r, 4)}
                  for i, (j, r) in sorted(best.items())]
    return found


def _stem_order(stem: str) -> tuple[int, str]:
    return (int(stem), stem) if stem.isdigit() else (-1, stem)
