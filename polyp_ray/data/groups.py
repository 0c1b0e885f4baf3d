"""Group near-duplicate images so that a split cannot put one scene on both sides, and check a split.

Video frames and re-used shots make a random split leak: a test frame whose neighbour was trained on
is not an unseen image. The similarity is deliberately cheap, so it runs on every dataset: the
Pearson correlation of 32x32 grey thumbnails (made in the validation pass and cached with it), over
the pixels that are not the endoscope's fixed black frame (dark in most images of the dataset; left
in, that shared octagon alone lifts unrelated CVC-ClinicDB frames above 0.95).

- near-twins: correlation > ``TWIN`` (0.95), joined transitively (union-find);
- video frames: where every stem is a whole number (CVC-ClinicDB, CVC-ColonDB, ETIS, GIANA, the
  numbering follows the recording), frames n and n+1 are joined when they are more alike than two
  unrelated frames of the dataset typically are (correlation > ``FRAME_LINK`` after removing the
  dataset's mean thumbnail, which puts unrelated pairs around 0). A cut to another scene falls
  below that and starts a new group; camera motion inside a sequence mostly does not.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from PIL import Image

THUMB = 32
TWIN = 0.95
FRAME_LINK = 0.0
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
    numbers = frame_numbers(stems)
    if numbers is not None:
        source = "near-duplicates + consecutive frames"
        scenes = standardised(thumbs, remove_mean=True)
        where = {n: i for i, n in enumerate(numbers)}
        for i, n in enumerate(numbers):
            following = where.get(n + 1)
            if following is not None and float(scenes[i] @ scenes[following]) > FRAME_LINK:
                join(i, following)
    members: dict[int, list[str]] = {}
    for i, stem in enumerate(stems):
        members.setdefault(root(i), []).append(stem)
    name = {r: min(group, key=_stem_order) for r, group in members.items()}
    return [name[root(i)] for i in range(len(stems))], source


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
