"""A synthetic polyp dataset: textured mucosa with one or more irregular, shaded polyps and exact masks.

It lets the embedded default job and the unit tests run on a machine that has no real data. It is
written once, in the Kvasir layout (``images/`` + ``masks/``), into the cache folder and reused. A
video variant (panning sequences, CVC-ClinicDB layout) exercises the near-duplicate grouping.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

SIZES = ((176, 160), (192, 160), (160, 144), (208, 176))  # (width, height): sizes vary, as in real sets


def synthetic_dataset(cache_dir: Path, count: int = 120, seed: int = 0) -> Path:
    """The folder of a synthetic set with ``count`` pairs, generated on first use."""
    root = Path(cache_dir) / f"synthetic-n{count}-s{seed}"

    def pairs() -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        rng = np.random.default_rng(seed)
        for index in range(count):
            width, height = SIZES[index % len(SIZES)]
            yield f"synth_{index:04d}", *synthetic_pair(rng, width, height)

    return _written(root, "images", "masks", pairs)


def synthetic_video_dataset(cache_dir: Path, sequences: int = 6, frames: int = 8, seed: int = 0,
                            step: int = 3, every: int = 1) -> Path:
    """A synthetic video set in the CVC-ClinicDB layout: ``sequences`` scenes, each filmed as ``frames``
    consecutive frames by a camera panning ``step`` pixels per frame; stems are frame numbers 1..N.
    ``every`` > 1 exports only every such frame (``frames`` of them per scene), as users often do:
    stems 1, 3, 5, ... for 2, and 0, 5, 10, ... (numbered from 0) for the others.

    Neighbouring frames are near-duplicates and a scene's first and last frames are less alike, as
    in real colonoscopy videos: what leaks across a random split, for the grouping tests.
    """
    exported = f"-e{every}" if every > 1 else ""
    root = Path(cache_dir) / f"synthetic-video-{sequences}x{frames}-s{seed}-p{step}{exported}"
    width, height = 160, 128

    def pairs() -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        rng = np.random.default_rng(seed)
        number = (1 if every <= 2 else 0) - every  # so the first stem is 1 (every 1st, 2nd frame) or 0
        for _ in range(sequences):
            pan = step * every * (frames - 1)
            scene, scene_mask = synthetic_pair(rng, width + pan, height + pan)
            direction = rng.choice([-1, 1], 2)
            for k in range(frames):
                shift = k * step * every
                x = shift if direction[0] > 0 else pan - shift
                y = shift if direction[1] > 0 else pan - shift
                noise = rng.normal(0, 4, (height, width, 3))  # a new sensor noise every frame
                frame = np.clip(scene[y:y + height, x:x + width] + noise, 0, 255).astype(np.uint8)
                number += every
                yield str(number), frame, scene_mask[y:y + height, x:x + width]

    return _written(root, "Original", "Ground Truth", pairs)


def _written(root: Path, image_dir: str, mask_dir: str,
             pairs: Callable[[], Iterator[tuple[str, np.ndarray, np.ndarray]]]) -> Path:
    """``root`` holding the generated pairs as PNGs, written once: into a temporary folder, then renamed."""
    done = root / ".complete"
    if done.exists():
        return root
    tmp = root.with_name(f"{root.name}.tmp{os.getpid()}")
    (tmp / image_dir).mkdir(parents=True, exist_ok=True)
    (tmp / mask_dir).mkdir(parents=True, exist_ok=True)
    for stem, image, mask in pairs():
        Image.fromarray(image).save(tmp / image_dir / f"{stem}.png")
        Image.fromarray(mask).save(tmp / mask_dir / f"{stem}.png")
    (tmp / ".complete").touch()
    try:
        tmp.rename(root)
    except OSError:  # another process finished first: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def synthetic_pair(rng: np.random.Generator, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """One RGB uint8 image [H, W, 3] and its 0/255 mask [H, W]."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = _mucosa(rng, width, height, xx, yy)
    mask = np.zeros((height, width), dtype=bool)
    for _ in range(int(rng.integers(1, 3))):
        inside, shade = _polyp(rng, width, height, xx, yy)
        tint = np.array([205.0, 120.0, 105.0]) + rng.normal(0, 12, 3)
        image = np.where(inside[..., None], tint * shade[..., None], image)
        mask |= inside
    image += rng.normal(0, 6, image.shape)  # sensor noise
    return np.clip(image, 0, 255).astype(np.uint8), np.where(mask, 255, 0).astype(np.uint8)


def _mucosa(rng: np.random.Generator, width: int, height: int, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    coarse = rng.normal(0, 1, (6, 6, 3)).astype(np.float32)
    smooth = [Image.fromarray(coarse[..., c]).resize((width, height), Image.Resampling.BICUBIC) for c in range(3)]
    texture = np.stack([np.asarray(channel) for channel in smooth], axis=-1)
    base = np.array([170.0, 85.0, 75.0]) + rng.normal(0, 10, 3)
    cx, cy = width / 2, height / 2
    vignette = 1.0 - 0.45 * (((xx - cx) / cx) ** 2 + ((yy - cy) / cy) ** 2) / 2
    return (base + 18.0 * texture) * vignette[..., None]


def _polyp(
    rng: np.random.Generator, width: int, height: int, xx: np.ndarray, yy: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    short = min(width, height)
    cx = rng.uniform(0.25, 0.75) * width
    cy = rng.uniform(0.25, 0.75) * height
    rx, ry = rng.uniform(0.10, 0.24, 2) * short
    angle = rng.uniform(0, np.pi)
    dx, dy = xx - cx, yy - cy
    u = (dx * np.cos(angle) + dy * np.sin(angle)) / rx
    v = (-dx * np.sin(angle) + dy * np.cos(angle)) / ry
    radius = np.sqrt(u**2 + v**2)
    theta = np.arctan2(v, u)
    wobble = 1.0 + sum(rng.uniform(0.03, 0.09) * np.cos(k * theta + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5))
    inside = radius < wobble
    # A dome lit from the upper left: brighter towards the light, darker at the rim.
    light = 0.85 + 0.25 * np.clip(1 - radius / wobble, 0, 1) - 0.08 * (u + v) / 2
    return inside, np.clip(light, 0.5, 1.3).astype(np.float32)

