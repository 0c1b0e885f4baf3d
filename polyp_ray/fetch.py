"""Files fetched from public addresses (the public datasets, the pretrained encoder weights): one download
step with a pinned-hash check and an optional mirror. Ground floor: it knows nothing of datasets or models.

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
from pathlib import Path

from polyp_ray.errors import ConfigError, DataError, PolypRayError
from polyp_ray.tf_quiet import quiet_keras

MIRROR_ENV = "POLYP_RAY_MIRROR"


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
