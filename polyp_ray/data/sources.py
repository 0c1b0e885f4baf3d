"""Several training sources (``data.path`` a list, e.g. ``[kvasir-seg, /data/CVC-ClinicDB]``, the
literature's Kvasir-SEG 900 + CVC-ClinicDB 550): each is found, validated, grouped and split on its own
(so a video set's groups never meet another set's, and each source is split in its own proportions);
the union trains, and every stem becomes ``<source>/<stem>`` so two sets' ``1.png`` stay apart and
the test split can be scored per source.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from polyp_ray.data.layouts import Pair
from polyp_ray.data.validation import Checked


def source_names(paths: list[str]) -> list[str]:
    """A short, distinct name per source: its folder's (or public dataset's) name."""
    names: list[str] = []
    for path in paths:
        base = Path(path.rstrip("/")).name or path
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def prefixed(name: str, stems: list[str]) -> list[str]:
    return [f"{name}/{stem}" for stem in stems]


def prefixed_pairs(name: str, pairs: list[Pair]) -> list[Pair]:
    return [Pair(f"{name}/{p.stem}", p.image, p.mask) for p in pairs]


def source_of(stem: str) -> str:
    """The source a union's stem came from ("" for a single source's stem)."""
    return stem.split("/", 1)[0] if "/" in stem else ""


def combined_checked(parts: list[Checked]) -> Checked:
    """The sources' validation results, one after the other, as one dataset's."""
    offsets = [np.zeros(1, dtype=np.int64)]
    start = 0
    for part in parts:
        offsets.append(part.offsets[1:] + start)
        start += int(part.offsets[-1])
    return Checked(np.concatenate([p.shapes for p in parts]), np.concatenate([p.coverage for p in parts]),
                   np.concatenate([p.thumbs for p in parts]), np.concatenate([p.bits for p in parts]),
                   np.concatenate(offsets))


def combined_sha256(names: list[str], hashes: list[str]) -> str:
    return hashlib.sha256("".join(f"{n}:{h};" for n, h in zip(names, hashes, strict=True)).encode()).hexdigest()
