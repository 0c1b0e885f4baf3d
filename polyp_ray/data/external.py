"""External test sets (``data.external_tests``): datasets from other centres, scored after a search.

An external set is never split, trained on or used to pick a model: all its pairs are test images.
It is found, validated and hashed like the training dataset (the same layouts, mask rule and caches),
at the start of a search, so a bad folder stops the search before anything is written, with every
problem named under its ``data.external_tests.<name>`` key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from polyp_ray.config import DataConfig
from polyp_ray.data.dataset import SplitArrays, dataset_root, decoded_arrays
from polyp_ray.data.layouts import Pair, discover_pairs
from polyp_ray.data.validation import Checked, coverage_problems, remember, validate_pairs
from polyp_ray.errors import DataError


@dataclass(frozen=True)
class ExternalSet:
    name: str
    root: Path
    layout: str
    pairs: list[Pair]
    sha256: str
    checked: Checked

    def summary(self) -> dict:
        return {"name": self.name, "root": str(self.root), "layout": self.layout, "n_pairs": len(self.pairs),
                "sha256": self.sha256}


def external_sets(config: DataConfig) -> dict[str, ExternalSet]:
    """Every external set found and validated; all problems of all sets in one DataError."""
    found: dict[str, ExternalSet] = {}
    problems: list[str] = []
    for name, where in config.external_tests.items():
        key = f"data.external_tests.{name}"
        try:
            root = dataset_root(dataclasses.replace(config, path=where, limit=None))
            layout, pairs, unpaired = discover_pairs(root)
        except DataError as err:
            problems.append(f"{key}: {err}")
            continue
        sha256, checked, bad = validate_pairs(pairs, config)
        lines = sorted([*unpaired, *bad]) + coverage_problems(checked, config, root)
        if not pairs:
            lines.append(f"{root}: no image/mask pairs ({layout.description})")
        if lines:
            problems.extend(f"{key}: {line}" for line in lines)
            continue
        remember(checked, sha256, config)
        found[name] = ExternalSet(name, root, layout.name, pairs, sha256, checked)
    if problems:
        raise DataError("\n".join(problems))
    return found


def external_split(external: ExternalSet, image_size: int, config: DataConfig) -> SplitArrays:
    """The whole set at ``image_size`` (decoded once, then cached) with its original-size truths."""
    images, masks = decoded_arrays(external.pairs, external.sha256, image_size, config)
    truths = [external.checked.truth(i) for i in range(len(external.pairs))]
    return SplitArrays(images, masks, [p.stem for p in external.pairs], truths)
