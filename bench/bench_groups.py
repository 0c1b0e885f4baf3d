"""Video frames exported with gaps: groups found and val/test frames leaking, before and after.

CVC-ClinicDB (612 frames of ~31 videos, numbered in recording order) is subsampled every k-th frame,
as users export videos. The reference scenes are the groups found on the full set (every frame kept),
where frame n and n+1 are adjacent. For each k the set is grouped and split (seeded, 60/20/20), and a
*leak* is a val/test frame whose previous or next exported frame of the same reference scene is in
training. "before": the rule as it was (n joined to n+1 only, so no link at all once k > 1);
"after": ``polyp_ray.data.groups.find_groups`` (next frame in number order, whatever the step).

    python bench/bench_groups.py [--data ../shared/data/CVC-ClinicDB] [--every 1 2 3 5 10]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench._common import machine_line  # noqa: E402
from polyp_ray.config import DataConfig  # noqa: E402
from polyp_ray.data.groups import FRAME_LINK, find_groups, similar_pairs, standardised, thumbnail  # noqa: E402
from polyp_ray.data.split import split_stems  # noqa: E402


def adjacent_numbers_only(stems: list[str], thumbs: np.ndarray) -> list[str]:
    """The rule before this change: near-twins, and frame n joined to n+1 when alike."""
    parent = list(range(len(stems)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    twins = standardised(thumbs)
    for i, j, _ in similar_pairs(twins, twins):
        parent[root(i)] = root(j)
    scenes = standardised(thumbs, remove_mean=True)
    where = {int(s): i for i, s in enumerate(stems)}
    for i, s in enumerate(stems):
        j = where.get(int(s) + 1)
        if j is not None and float(scenes[i] @ scenes[j]) > FRAME_LINK:
            parent[root(i)] = root(j)
    return [str(root(i)) for i in range(len(stems))]


def leaks(stems: list[str], split: dict[str, list[str]], scene: dict[str, str]) -> int:
    """Val/test frames whose previous or next exported frame of the same scene is in training."""
    where = {s: name for name, members in split.items() for s in members}
    order = sorted(stems, key=int)
    count = 0
    for k, stem in enumerate(order):
        if where[stem] == "train":
            continue
        around = [order[m] for m in (k - 1, k + 1) if 0 <= m < len(order)]
        count += any(scene[o] == scene[stem] and where[o] == "train" for o in around)
    return count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str((REPO_ROOT / ".." / "shared" / "data" / "CVC-ClinicDB").resolve()))
    ap.add_argument("--every", type=int, nargs="+", default=[1, 2, 3, 5, 10])
    args = ap.parse_args()
    folder = Path(args.data) / "Original"
    stems = sorted((p.stem for p in folder.glob("*.png")), key=int)
    thumbs = np.array([thumbnail(np.asarray(Image.open(folder / f"{s}.png").convert("RGB"))) for s in stems])
    reference = dict(zip(stems, adjacent_numbers_only(stems, thumbs), strict=True))
    print(machine_line())
    print(f"{len(stems)} frames, {len(set(reference.values()))} reference scenes (every frame kept)")
    config = DataConfig(path=str(args.data), val_fraction=0.2, test_fraction=0.2)
    print("every  frames  groups before/after  val+test  leaks before/after")
    for k in args.every:
        keep = list(range(0, len(stems), k))
        sub, sub_thumbs = [stems[i] for i in keep], thumbs[keep]
        before = adjacent_numbers_only(sub, sub_thumbs)
        after, _ = find_groups(sub, sub_thumbs)
        found = []
        for groups in (before, after):
            split = split_stems(sub, config, groups)
            found.append((len(set(groups)), leaks(sub, split, reference), len(split["val"]) + len(split["test"])))
        (gb, lb, held), (ga, la, held_a) = found
        print(f"{k:5d}  {len(sub):6d}  {gb:6d} / {ga:<6d}        {held:3d}/{held_a:<3d}  "
              f"{lb:3d} ({lb / held:.0%}) / {la:3d} ({la / held_a:.0%})")


if __name__ == "__main__":
    main()
