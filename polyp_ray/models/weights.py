"""Pretrained encoder weights: found on local disk only (this project never downloads at run time).

Kept free of Keras so a search can check, before any trial starts, that the weights it will need exist.
"""

from __future__ import annotations

import os
from pathlib import Path

from polyp_ray.errors import ConfigError

VGG16_NOTOP_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"


def resolve_vgg16_weights(weights: str) -> Path | None:
    """None for random init; the local .h5 for "imagenet" or a path; a clear error when it is absent."""
    if weights in ("none", ""):
        return None
    if weights != "imagenet":
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ConfigError(f"encoder_weights: {path}: weights file not found")
        return path
    given = os.environ.get("POLYP_RAY_VGG16_WEIGHTS")
    candidates = [Path(given).expanduser()] if given else []
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    candidates.append(keras_home / "models" / VGG16_NOTOP_FILE)
    for path in candidates:
        if path.is_file():
            return path
    raise ConfigError(
        f"encoder_weights: imagenet: {VGG16_NOTOP_FILE} not found (looked in "
        f"{', '.join(str(c) for c in candidates)}); this machine cannot download it: copy the file there "
        "(or set POLYP_RAY_VGG16_WEIGHTS to its path), or set encoder_weights: none to train from scratch"
    )


def resolve_weights(encoder: str, weights: str) -> Path | None:
    """The local weights file ``encoder`` should load for ``weights`` ("none", "imagenet" or a path).

    Interface shared by the encoder registry and the downloader (being rewritten: fetch like Keras).
    """
    if encoder == "vgg16" or weights in ("none", "") or weights != "imagenet":
        return resolve_vgg16_weights(weights)
    raise ConfigError(f"encoder_weights: imagenet: no ImageNet weights known for encoder {encoder!r} yet")
