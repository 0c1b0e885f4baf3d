"""Named public datasets, fetched by the download step they share with the pretrained weights
(polyp_ray/fetch.py).

``data.path: kvasir-seg`` names an entry of ``PUBLIC_DATASETS``: its zip is downloaded once into the
cache (``DataConfig.resolved_cache_dir() / "datasets"``), checked against its pinned SHA-256, unpacked
into a temporary folder and renamed into place, then read like any dataset folder. To use your own
folder of that name, write a path (``./kvasir-seg``).

Importing this module does not import Keras/TensorFlow; only a download does.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from polyp_ray.data.layouts import LAYOUTS
from polyp_ray.errors import DataError
from polyp_ray.fetch import download, file_matches


@dataclass(frozen=True)
class PublicDataset:
    name: str  # what data.path names
    url: str  # the official address of the zip
    sha256: str  # of the zip, pinned: a download that differs is refused
    folder: str  # the dataset's folder inside the zip
    layout: str  # a name from polyp_ray.data.layouts: checked when unpacking
    description: str


# Kvasir-SEG's SHA-256 and size (46,227,172 bytes) are those pinned for the same address by independent
# projects, e.g. constantinpape/torch-em torch_em/data/datasets/medical/kvasir.py.
PUBLIC_DATASETS: dict[str, PublicDataset] = {
    d.name: d
    for d in (
        PublicDataset(
            "kvasir-seg",
            "https://datasets.simula.no/downloads/kvasir-seg.zip",
            "03b30e21d584e04facf49397a2576738fd626815771afbbf788f74a7153478f7",
            "Kvasir-SEG",
            "kvasir",
            "Kvasir-SEG: 1,000 polyp images and masks (Jha et al., MMM 2020); research and education only",
        ),
    )
}


def public_dataset_root(name: str, cache_dir: Path) -> Path:
    """The unpacked folder of the public dataset ``name``, downloaded and unpacked on first use."""
    spec = PUBLIC_DATASETS[name]
    home = cache_dir / "datasets"
    root = home / spec.name / spec.folder
    if root.is_dir():
        return root
    archive = home / f"{spec.name}.zip"  # also where a user puts the zip by hand
    if not (archive.is_file() and file_matches(archive, spec.sha256)):
        download(spec.url, archive, spec.sha256, f"data.path: {name}", advice="or give your own folder as data.path")
    _unpack(archive, home / spec.name, spec)
    return root


def _unpack(archive: Path, final: Path, spec: PublicDataset) -> None:
    """Unpack into a temporary folder and rename it into place: ``final`` is whole or absent."""
    layout = LAYOUTS[spec.layout]
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".unpacking", dir=final.parent))
    try:
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(tmp)  # zipfile drops absolute paths and ".." parts
        inner = tmp / spec.folder
        if not ((inner / layout.image_dir).is_dir() and (inner / layout.mask_dir).is_dir()):
            raise DataError(f"{archive}: expected {spec.folder}/{layout.image_dir} and {spec.folder}/"
                            f"{layout.mask_dir} inside; delete the file and run again")
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / spec.folder).is_dir():  # not a concurrent unpack that finished first
                raise
    except zipfile.BadZipFile as err:
        raise DataError(f"{archive}: not a readable zip ({err}); delete it and run again") from None
    except OSError as err:
        raise DataError(f"{final}: cannot unpack {archive} there ({err.strerror or err})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
