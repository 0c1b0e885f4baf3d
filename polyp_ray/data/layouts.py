"""Find image/mask pairs in the folder layouts polyp datasets ship in (a registry of layouts).

Pairs are matched by file stem, never by sort order: a missing or extra file shows up as a named
problem instead of silently shifting every later pair by one.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from polyp_ray.errors import DataError

IMAGE_SUFFIXES = (".bmp", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".gif", ".webp")


@dataclass(frozen=True)
class Pair:
    stem: str
    image: Path
    mask: Path


@dataclass(frozen=True)
class Layout:
    """A dataset layout: the image folder and the mask folder, relative to the dataset root."""

    name: str
    image_dir: str
    mask_dir: str
    description: str


# The registry: add a layout here and both discovery and "auto" know it.
LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout("kvasir", "images", "masks", "Kvasir-SEG, PraNet-style splits"),
        Layout("clinicdb", "Original", "Ground Truth", "CVC-ClinicDB"),
        Layout("giana", "train", "train_labels", "GIANA / CVC-ColonDB (the notebook's layout)"),
    )
}


def discover_pairs(
    root: str | Path,
    layout: str = "auto",
    image_dir: str | None = None,
    mask_dir: str | None = None,
) -> tuple[Layout, list[Pair], list[str]]:
    """Return the layout, the pairs sorted by stem, and one problem line per unpaired file, per folder
    named like an image and per second file with the same stem.

    ``layout="folders"`` (or giving ``image_dir``/``mask_dir``) uses the user's own pair of folders.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        if root.is_file() and zipfile.is_zipfile(root):
            raise DataError(f"{root}: a zip archive, not a folder; unpack it (unzip {root.name}) and set "
                            "data.path to the folder it holds")
        raise DataError(f"{root}: {'a file, not a folder' if root.exists() else 'dataset folder not found'}")
    chosen = _choose_layout(root, layout, image_dir, mask_dir)
    images, problems = _index_folder(root / chosen.image_dir)
    masks, mask_problems = _index_folder(root / chosen.mask_dir)
    problems += mask_problems
    problems += [f"{images[s]}: image has no mask in {root / chosen.mask_dir}"
                for s in sorted(images.keys() - masks.keys())]
    problems += [f"{masks[s]}: mask has no image in {root / chosen.image_dir}"
                 for s in sorted(masks.keys() - images.keys())]
    pairs = [Pair(s, images[s], masks[s]) for s in sorted(images.keys() & masks.keys())]
    return chosen, pairs, problems


def _choose_layout(root: Path, layout: str, image_dir: str | None, mask_dir: str | None) -> Layout:
    if layout == "folders" or image_dir or mask_dir:
        if not (image_dir and mask_dir):
            raise DataError(f"{root}: the 'folders' layout needs both data.image_dir and data.mask_dir")
        return Layout("folders", image_dir, mask_dir, "the user's own image and mask folders")
    if layout != "auto":
        if layout not in LAYOUTS:
            known = sorted([*LAYOUTS, "auto", "folders"])
            raise DataError(f"{root}: unknown layout {layout!r}; known: {known}")
        return LAYOUTS[layout]
    for candidate in LAYOUTS.values():
        if (root / candidate.image_dir).is_dir() and (root / candidate.mask_dir).is_dir():
            return candidate
    expected = ", ".join(f"{lay.image_dir}/ + {lay.mask_dir}/" for lay in LAYOUTS.values())
    raise DataError(f"{root}: no known layout found (expected one of: {expected}; or set data.image_dir/mask_dir)")


def _index_folder(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """The folder's image files by stem, and a problem line for each entry that cannot be one.

    Broken symbolic links stay in the index: they are meant to be images, and reading them reports
    them by name, instead of their partner being called unpaired.
    """
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found")
    index: dict[str, Path] = {}
    problems: list[str] = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES or path.name.startswith("."):
            continue
        if not path.name.isprintable():  # a newline in a name would break the one-line-per-problem report
            problems.append(f"{folder / printable(path.name)}: the file name holds a control character "
                            "(shown escaped); rename the file")
        elif path.is_dir():
            problems.append(f"{path}: a folder, not an image file")
        elif path.stem in index:
            problems.append(f"{path}: two files share the stem {path.stem!r} ({index[path.stem].name})")
        else:
            index[path.stem] = path
    if not index and not problems:
        entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
        subfolders = sorted(p.name for p in entries if p.is_dir())
        if subfolders and len(subfolders) == len(entries):
            shown = ", ".join(f"{name}/" for name in subfolders[:5]) + (", ..." if len(subfolders) > 5 else "")
            raise DataError(f"{folder}: holds only sub-folders ({len(subfolders)}: {shown}), no image files; "
                            "point data.path (or data.image_dir/mask_dir) at the folder that holds the images")
        what = "empty folder" if not entries else f"no image files among its {len(entries)} entries"
        raise DataError(f"{folder}: {what} (no {'/'.join(IMAGE_SUFFIXES)} files)")
    return index, problems


def printable(name: str) -> str:
    """``name`` with each control character escaped (a newline as \\n), so it stays on one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in name)
