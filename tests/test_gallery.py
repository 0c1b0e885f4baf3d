"""The winner's gallery as the search writes it and the report reads it (polyp_ray/gallery.py)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from polyp_ray.experiment import ExperimentLayout
from polyp_ray.gallery import (
    BEST,
    MIN_PANEL,
    WORST,
    forget,
    read_external_galleries,
    read_gallery,
    winner_cases,
    write_gallery,
)


def _split(n: int, size: int = 16) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    stems = [f"<img {i}>" for i in range(n)]  # any string: the files are numbered, not named by stem
    images = rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8)
    masks = np.zeros((n, size, size, 1), dtype=np.uint8)
    masks[:, 4:8, 4:8] = 1
    probs = rng.random((n, size, size, 1)).astype(np.float32)
    dice = rng.permutation(n) / n  # distinct: image k's rank is known
    return stems, images, masks, probs, {"dice": dice, "iou": dice / 2, "truth_fraction": np.full(n, 16 / size**2)}


def test_the_gallery_shows_the_worst_images_then_the_best_and_reads_back(tmp_path: Path) -> None:
    stems, images, masks, probs, scores = _split(30)
    cases = winner_cases(stems, scores, images, masks, probs, 0.5)
    by_dice = [stems[i] for i in np.argsort(scores["dice"])]
    assert [c.stem for c in cases] == by_dice[:WORST] + by_dice[::-1][:BEST]
    assert [c.group for c in cases] == ["worst"] * WORST + ["best"] * BEST
    worst = int(np.argmin(scores["dice"]))
    strip = np.asarray(Image.open(io.BytesIO(cases[0].png)))
    factor = MIN_PANEL // 16
    assert strip.shape == (MIN_PANEL, 3 * MIN_PANEL + 8, 3)  # three upscaled panels, two gaps
    assert (strip[::factor, :MIN_PANEL:factor] == images[worst]).all()  # the first panel is that image

    files = ExperimentLayout(tmp_path).gallery
    write_gallery(files, "abc", cases)
    assert read_gallery(files, "abc") == cases
    assert read_gallery(files, "another trial") is None  # a gallery of the winner only
    files.strip(3).unlink()  # cut short: the report predicts the gallery itself
    assert read_gallery(files, "abc") is None


def test_a_small_split_shows_each_image_once(tmp_path: Path) -> None:
    stems, images, masks, probs, scores = _split(WORST + 2)
    cases = winner_cases(stems, scores, images, masks, probs, 0.5)
    assert sorted(c.stem for c in cases) == sorted(stems)
    assert [c.group for c in cases] == ["worst"] * WORST + ["best"] * 2


def test_each_external_set_keeps_its_worst_images_under_its_own_name(tmp_path: Path) -> None:
    layout = ExperimentLayout(tmp_path)
    stems, images, masks, probs, scores = _split(30)
    test = winner_cases(stems, scores, images, masks, probs, 0.5)
    write_gallery(layout.gallery, "abc", test)
    names = ["CVC-ColonDB", "ETIS/<b>"]  # any string: the folders are numbered
    for number, name in enumerate(names):
        cases = winner_cases(stems, scores, images, masks, probs, 0.5, worst=3 + number, best=0)
        write_gallery(layout.external_gallery(number), "abc", cases, name)
    found = read_external_galleries(layout.external_galleries(), "abc")
    by_dice = [stems[i] for i in np.argsort(scores["dice"])]
    assert [(name, [c.stem for c in cases]) for name, cases in found] == [("CVC-ColonDB", by_dice[:3]),
                                                                         ("ETIS/<b>", by_dice[:4])]
    assert read_gallery(layout.gallery, "abc") == test  # the test gallery is not one of them
    assert read_external_galleries(layout.external_galleries(), "another trial") == []
    forget(layout.external_galleries())  # a new winner: the old one's external images are not shown as its
    assert read_external_galleries(layout.external_galleries(), "abc") == []
