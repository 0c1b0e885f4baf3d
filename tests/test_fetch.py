"""The mirror setting of every public download (polyp_ray/fetch.py)."""

from __future__ import annotations

import pytest

from polyp_ray.data.public import PUBLIC_DATASETS
from polyp_ray.errors import ConfigError
from polyp_ray.fetch import mirrored
from polyp_ray.models.encoders import ENCODERS

KVASIR = PUBLIC_DATASETS["kvasir-seg"]
VGG16 = ENCODERS["vgg16"].weights
assert VGG16 is not None


def test_mirror_replaces_scheme_and_host_and_keeps_the_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POLYP_RAY_MIRROR", raising=False)
    assert mirrored(KVASIR.url) == KVASIR.url
    monkeypatch.setenv("POLYP_RAY_MIRROR", "https://mirror.example.org/pub/")
    assert mirrored(KVASIR.url) == "https://mirror.example.org/pub/downloads/kvasir-seg.zip"
    assert mirrored(VGG16.origin) == ("https://mirror.example.org/pub/tensorflow/keras-applications/"
                                             "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")
    monkeypatch.setenv("POLYP_RAY_MIRROR", "mirror.example.org")
    with pytest.raises(ConfigError, match="POLYP_RAY_MIRROR=mirror.example.org: must be an http"):
        mirrored(KVASIR.url)
