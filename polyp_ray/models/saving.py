"""Writing and reading our models: per-epoch checkpoints as unzipped Keras folders, finished models as
``.keras`` archives, both loadable wherever our custom layers and losses may be in them.

A checkpoint holds the weights and Adam's two slots and is written every epoch: Keras writes the
unzipped folder faster than the archive (figures in bench/README.md). The archive is the same files
zipped, so exporting the winner is a copy, not a re-save.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

CHECKPOINT_MODEL = "model"  # folder inside a checkpoint


def save_checkpoint_model(model: Any, checkpoint: Path) -> None:
    model.save(checkpoint / CHECKPOINT_MODEL, zipped=False)


def checkpoint_model(checkpoint: Path) -> Path:
    """Where the model of ``checkpoint`` is."""
    return checkpoint / CHECKPOINT_MODEL


def export_archive(checkpoint: Path, target: Path) -> None:
    """The checkpoint's model as a ``.keras`` archive at ``target`` (stored, not compressed: weights
    barely compress, and the archive then loads as fast as the folder)."""
    source = checkpoint_model(checkpoint)
    partial = target.with_name(target.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as archive:
        for file in sorted(source.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(source).as_posix())
    partial.replace(target)  # never leaves a half-written model where a loader would find it


def share_if_identical(copy: Path, original: Path) -> bool:
    """Make ``copy`` a hard link to ``original`` when their bytes are equal (the ensemble's best member
    is the winner in ``best/``: one model on disk, not two); False, and both kept, otherwise."""
    import filecmp
    import os

    if not (copy.is_file() and original.is_file()) or copy.samefile(original):
        return copy.is_file() and original.is_file()
    if not filecmp.cmp(copy, original, shallow=False):
        return False
    linked = copy.with_name(copy.name + ".link")
    try:
        os.link(original, linked)
    except OSError:  # a filesystem without hard links: the copy stays
        return False
    linked.replace(copy)
    return True


def load_model(path: Path, compile: bool = False) -> Any:
    """A ``.keras`` archive or checkpoint folder, with our layers and losses known to Keras."""
    import keras

    # A fresh process (a Ray worker, predict) has imported none of our model code: register every custom
    # object, or Keras cannot locate their classes.
    from polyp_ray.models.keras_objects import register

    register()
    return keras.models.load_model(path, compile=compile)
