"""Files fetched from public addresses: named public datasets, and the one download step they share with
the pretrained weights (polyp_ray.models.weights).

``data.path: kvasir-seg`` names an entry of ``PUBLIC_DATASETS``: its zip is downloaded once into the
cache (``DataConfig.resolved_cache_dir() / "datasets"``), checked against its pinned SHA-256, unpacked
into a temporary folder and renamed into place, then read like any dataset folder. To use your own
folder of that name, write a path (``./kvasir-seg``).

``POLYP_RAY_MIRROR`` (a base URL, e.g. ``https://mirror.example.org/pub``) replaces the scheme and host
of every public address, keeping its path, for sites behind a firewall.

Importing this module does not import Keras/TensorFlow; only a download does.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.parse
import zipfile
from dataclasses import dataclass
from pathlib import Path

from polyp_ray.data.layouts import LAYOUTS
from polyp_ray.errors import ConfigError, DataError, PolypRayError
from polyp_ray.tf_quiet import quiet_keras

MIRROR_ENV = "POLYP_RAY_MIRROR"


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


def mirrored(url: str) -> str:
    """``url`` with its scheme and host replaced by ``$POLYP_RAY_MIRROR`` when that is set."""
    base = os.environ.get(MIRROR_ENV, "").strip()
    if not base:
        return url
    mirror = urllib.parse.urlsplit(base)
    if mirror.scheme not in ("http", "https") or not mirror.netloc:
        raise ConfigError(f"{MIRROR_ENV}={base}: must be an http(s) base URL, e.g. https://mirror.example.org/pub")
    parts = urllib.parse.urlsplit(url)
    return base.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")


def file_matches(path: Path, file_hash: str | None) -> bool:
    """Keras's rule: a 64-hex hash is SHA-256, any other MD5; no hash means any complete file will do."""
    if file_hash is None:
        return True
    digest = hashlib.sha256() if len(file_hash) == 64 else hashlib.md5()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest() == file_hash


def download(origin: str, target: Path, file_hash: str | None, what: str, advice: str = "",
             error: type[PolypRayError] = DataError) -> Path:
    """Fetch ``origin`` (through the mirror) to ``target`` with ``keras.utils.get_file`` and its hash check.

    Keras writes straight to its cache path and keeps a file that fails the hash check there, so the
    download goes to a private folder beside ``target`` and is renamed into place only once verified:
    ``target`` is then complete or absent, also when the connection drops or two processes race.
    Any failure is one ``error`` line naming the address and where to put the file by hand.
    """
    url = mirrored(origin)
    where = (f"put the file at {target}" + (f" (from {origin})" if url != origin else "")
             + (" (the file there fails its hash check)" if target.exists() else "")
             + (f", {advice}" if advice else ""))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    except OSError as err:
        raise error(f"{what}: cannot write to {target.parent} ({err.strerror or err}); {where}") from None
    try:
        got = quiet_keras().utils.get_file(target.name, url, file_hash=file_hash, cache_dir=str(partial),
                                      cache_subdir=str(partial))
        os.replace(got, target)
    except ValueError:  # get_file's hash mismatch
        raise error(f"{what}: the file downloaded from {url} does not match its pinned hash {file_hash}; nothing "
                    f"was kept; {where}") from None
    except Exception as err:  # get_file turns a failed request into a bare Exception; a dropped one is OSError
        reason = str(err).replace(f"URL fetch failure on {url}: ", "").removeprefix("None -- ").replace(" -- ", " ")
        raise error(f"{what}: cannot download {url} ({reason}); {where}") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


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
