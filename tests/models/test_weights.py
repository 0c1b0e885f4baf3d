"""ImageNet weights fetched the way Keras does, against an HTTP server on 127.0.0.1 (tests/http_files.py),
checked against the hash pinned in each EncoderSpec, and shipped to other nodes."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import pytest

from polyp_ray.errors import ConfigError
from polyp_ray.models import weights
from polyp_ray.models.encoders import ENCODERS, WeightsFile
from tests.http_files import Server, entries

VGG16 = weights.imagenet_files()["vgg16"]
MOBILENET = weights.imagenet_files()["mobilenetv2"]


def pin(monkeypatch: pytest.MonkeyPatch, encoder: str, body: bytes) -> WeightsFile:
    """Pin the test bytes' MD5 for ``encoder`` (the real Keras hash stays untouched elsewhere)."""
    encoder_spec = ENCODERS[encoder]
    assert encoder_spec.weights is not None
    spec = dataclasses.replace(encoder_spec.weights, file_hash=hashlib.md5(body).hexdigest())
    monkeypatch.setitem(ENCODERS, encoder, dataclasses.replace(encoder_spec, weights=spec))
    return spec




def test_weights_land_in_the_keras_cache_and_are_reused(server: Server, monkeypatch, tmp_path: Path) -> None:
    body = os.urandom(50_000)
    spec = pin(monkeypatch, "vgg16", body)
    path = server.serve(spec.origin, body)
    got = weights.resolve_weights("vgg16", "imagenet")
    assert got == tmp_path / "keras" / "models" / spec.file
    assert got.read_bytes() == body
    assert weights.resolve_weights("vgg16", "imagenet") == got
    assert server.hits[path] == 1, "the cached file must be reused, not fetched again"
    assert entries(got.parent) == [spec.file], "no temporary files left beside it"
    got.write_bytes(body[:1000])  # a half-copied file fails the hash check: fetched again, as Keras does
    assert weights.resolve_weights("vgg16", "imagenet") == got and got.read_bytes() == body
    assert server.hits[path] == 2


def test_the_encoder_loads_the_file_it_downloaded(server: Server, tmp_path: Path) -> None:
    """End to end through the model builder: MobileNetV2's file (no pinned hash, as in Keras) in Keras's
    legacy .h5 format, the format of the real ImageNet files."""
    import h5py
    import keras
    import numpy as np
    from keras.src.legacy.saving import legacy_h5_format

    from polyp_ray.models import build_model

    source = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))
    written = tmp_path / "weights.h5"
    with h5py.File(written, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, source)
    path = server.serve(MOBILENET.origin, written.read_bytes())
    model = build_model("unet", 32, base_width=4, encoder="mobilenetv2", encoder_weights="imagenet")
    loaded = model.get_layer("encoder").get_layer("Conv1").get_weights()[0]
    np.testing.assert_array_equal(loaded, source.get_layer("Conv1").get_weights()[0])
    assert server.hits[path] == 1
    assert (tmp_path / "keras" / "models" / MOBILENET.file).read_bytes() == written.read_bytes()


def test_a_wrong_checksum_is_refused_and_nothing_is_kept(server: Server, tmp_path: Path) -> None:
    server.serve(VGG16.origin, b"not the weights Keras pinned")  # the real MD5 is pinned
    with pytest.raises(ConfigError) as err:
        weights.resolve_weights("vgg16", "imagenet")
    message = str(err.value)
    assert "\n" not in message
    assert f"{server.url}/tensorflow/keras-applications/vgg16/{VGG16.file}" in message
    assert f"does not match its pinned hash {VGG16.file_hash}; nothing was kept" in message
    assert f"put the file at {tmp_path / 'keras' / 'models' / VGG16.file}" in message
    assert entries(tmp_path / "keras" / "models") == []


def test_an_interrupted_download_keeps_nothing(server: Server, tmp_path: Path) -> None:
    # MobileNetV2 has no pinned hash (as in Keras): only the short body gives the interruption away.
    path = server.serve(MOBILENET.origin, os.urandom(40_000))
    server.truncate.add(path)
    with pytest.raises(ConfigError, match="cannot download .*retrieval incomplete"):
        weights.resolve_weights("mobilenetv2", "imagenet")
    assert server.hits[path] == 1
    assert entries(tmp_path / "keras" / "models") == []


def test_offline_says_which_address_failed_and_where_to_put_the_file(offline: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        weights.resolve_weights("vgg16", "imagenet")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"encoder_weights: imagenet: {VGG16.file}: cannot download {offline}/tensorflow/")
    assert "Connection refused); put the file at" in message
    assert f"put the file at {tmp_path / 'keras' / 'models' / VGG16.file} (from {VGG16.origin})" in message
    assert "encoder_weights: none" in message
    assert entries(tmp_path / "keras" / "models") == []


def test_a_file_in_the_cache_or_a_path_needs_no_network(offline: str, monkeypatch, tmp_path: Path) -> None:
    body = os.urandom(1000)
    spec = pin(monkeypatch, "efficientnetb0", body)
    cached = tmp_path / "keras" / "models" / spec.file
    cached.parent.mkdir(parents=True)
    cached.write_bytes(body)
    assert weights.resolve_weights("efficientnetb0", "imagenet") == cached
    own = tmp_path / "own.h5"
    own.write_bytes(b"x")
    assert weights.resolve_weights("resnet50", str(own)) == own
    assert weights.resolve_weights("resnet50", "none") is None
    with pytest.raises(ConfigError, match="missing.h5: weights file not found"):
        weights.resolve_weights("resnet50", str(tmp_path / "missing.h5"))
    with pytest.raises(ConfigError, match="no ImageNet weights for encoder 'conv'"):
        weights.resolve_weights("conv", "imagenet")


def test_the_payload_installs_the_files_on_another_node(server: Server, monkeypatch, tmp_path: Path) -> None:
    body = os.urandom(30_000)
    spec = pin(monkeypatch, "vgg16", body)
    path = server.serve(spec.origin, body)
    payload = weights.weights_payload([("vgg16", "imagenet"), ("vgg16", "none"), ("resnet50", str(tmp_path))])
    assert payload == {spec.file: body}  # a user's own path is not shipped
    # "Another node": its own empty Keras cache, and no network at all.
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "node2"))
    monkeypatch.setenv("POLYP_RAY_MIRROR", "http://127.0.0.1:1")
    weights.install_payload(payload)
    installed = tmp_path / "node2" / "models" / spec.file
    assert installed.read_bytes() == body
    before = installed.stat().st_ino
    weights.install_payload(payload)  # present and valid: left alone
    assert installed.stat().st_ino == before
    assert weights.resolve_weights("vgg16", "imagenet") == installed
    assert server.hits[path] == 1 and entries(installed.parent) == [spec.file]
    with pytest.raises(ValueError, match="not a known weights file"):
        weights.install_payload({"../../etc/passwd": b""})
