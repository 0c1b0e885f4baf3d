"""Pretrained encoder weights: the keras.applications ImageNet "notop" files, fetched the way Keras does.

``encoder_weights: imagenet`` uses ``KERAS_HOME/models/<file>`` (default ``~/.keras/models``) when it is
there and passes its hash check, and otherwise downloads it with ``keras.utils.get_file`` (through
``POLYP_RAY_MIRROR`` when set); a path uses that file. Importing this module does not import
Keras/TensorFlow, so the search CLI resolves every encoder the space can sample before it starts Ray.

On a cluster only the driver downloads: ``weights_payload`` reads the files it resolved, the bytes
travel to the trials through Ray's object store, and ``install_payload`` writes them into each node's
own Keras cache.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from polyp_ray.errors import ConfigError
from polyp_ray.fetch import download, file_matches
from polyp_ray.models.encoders import ENCODERS, WeightsFile


def imagenet_files() -> dict[str, WeightsFile]:
    """Every encoder's ImageNet weight file, by encoder name (the files are in polyp_ray.models.encoders)."""
    return {name: spec.weights for name, spec in ENCODERS.items() if spec.weights is not None}


def keras_models_dir() -> Path:
    """Where Keras caches application weights: ``$KERAS_HOME/models``, default ``~/.keras/models``."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser() / "models"


def resolve_weights(encoder: str, weights: str) -> Path | None:
    """The local file ``encoder`` loads for ``weights``: None for "none"; the given file for a path; for
    "imagenet" the Keras cache's file, downloaded first when absent or failing its hash check."""
    if weights in ("none", ""):
        return None
    if weights != "imagenet":
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ConfigError(f"encoder_weights: {path}: weights file not found")
        return path
    spec = imagenet_files().get(encoder)
    if spec is None:
        raise ConfigError(f"encoder_weights: imagenet: no ImageNet weights for encoder {encoder!r}; "
                          f"known: {sorted(imagenet_files())}")
    target = keras_models_dir() / spec.file
    if target.is_file() and file_matches(target, spec.file_hash):
        return target
    return download(spec.origin, target, spec.file_hash, f"encoder_weights: imagenet: {spec.file}",
                    advice="or give its path as encoder_weights, or set encoder_weights: none to train from scratch",
                    error=ConfigError)


def weights_payload(needed: Iterable[tuple[str, str]]) -> dict[str, bytes]:
    """The Keras-cache files behind ``needed`` (encoder, weights) pairs, by file name, resolved (and
    downloaded) here: what the driver ships to trials on other nodes. A path given as encoder_weights is
    not shipped: it must exist on every node (shared storage)."""
    payload: dict[str, bytes] = {}
    for encoder, weights in needed:
        if weights == "imagenet":
            path = resolve_weights(encoder, weights)
            assert path is not None
            payload[path.name] = path.read_bytes()
    return payload


def install_payload(payload: Mapping[str, bytes]) -> None:
    """Write each shipped file into this node's Keras cache where it is absent or fails its hash check;
    the write is atomic (temporary file + rename), so trials starting together on one node are safe."""
    models = keras_models_dir()
    for name, data in payload.items():
        spec = next((s for s in imagenet_files().values() if s.file == name), None)
        if spec is None:  # only known cache names, never a path from elsewhere
            raise ValueError(f"install_payload: {name!r} is not a known weights file")
        target = models / name
        if target.is_file() and file_matches(target, spec.file_hash):
            continue
        models.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".partial", dir=models)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
