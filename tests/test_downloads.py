"""Downloads of ImageNet weights and public datasets, against an HTTP server on 127.0.0.1 that the tests
start themselves and reach through POLYP_RAY_MIRROR; nothing here leaves this machine.

KERAS_HOME and POLYP_RAY_CACHE point at temporary folders in every test.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import threading
import urllib.parse
import zipfile
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from polyp_ray.config import DataConfig
from polyp_ray.data import public
from polyp_ray.data.dataset import dataset_root, prepare_data
from polyp_ray.errors import ConfigError, DataError
from polyp_ray.models import weights
from polyp_ray.models.pretrained import needed_weights
from tests.conftest import write_pair

VGG16 = weights.NOTOP_WEIGHTS["vgg16"]
MOBILENET = weights.NOTOP_WEIGHTS["mobilenetv2"]
KVASIR = public.PUBLIC_DATASETS["kvasir-seg"]


class Server:
    """Serves ``files`` (URL path -> bytes); counts requests; paths in ``truncate`` send half the body
    under the full Content-Length and close the connection."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.truncate: set[str] = set()
        self.hits: Counter[str] = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                path = urllib.parse.urlsplit(self.path).path
                server.hits[path] += 1
                body = server.files.get(path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if path in server.truncate else body)
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def serve(self, origin: str, body: bytes) -> str:
        """Serve ``body`` where the mirror maps the public address ``origin``; its URL path."""
        path = urllib.parse.urlsplit(origin).path
        self.files[path] = body
        return path


def private_homes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mirror: str) -> str:
    monkeypatch.setenv("POLYP_RAY_MIRROR", mirror)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("POLYP_RAY_CACHE", str(tmp_path / "cache"))
    return mirror


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Server]:
    srv = Server()
    srv.thread.start()
    private_homes(monkeypatch, tmp_path, srv.url)
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()
    srv.thread.join(timeout=10)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A mirror at a port nothing listens on (bound, then closed): every download is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return private_homes(monkeypatch, tmp_path, f"http://127.0.0.1:{port}")


def pin(monkeypatch: pytest.MonkeyPatch, encoder: str, body: bytes) -> weights.WeightsFile:
    """Pin the test bytes' MD5 for ``encoder`` (the real Keras hash stays untouched elsewhere)."""
    spec = dataclasses.replace(weights.NOTOP_WEIGHTS[encoder], file_hash=hashlib.md5(body).hexdigest())
    monkeypatch.setitem(weights.NOTOP_WEIGHTS, encoder, spec)
    return spec


def kvasir_zip(tmp_path: Path, pairs: int = 12) -> bytes:
    """A tiny dataset in the official zip's layout: Kvasir-SEG/{images,masks}/*.jpg + the bbox JSON."""
    root = tmp_path / "zip-src"
    for i in range(pairs):
        write_pair(root / KVASIR.folder, "images", "masks", f"cju{i:04d}", suffix=".jpg", seed=i)
    (root / KVASIR.folder / "kavsir_bboxes.json").write_text(json.dumps({}))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for path in sorted(root.rglob("*")):
            zipped.write(path, path.relative_to(root).as_posix())
    return buffer.getvalue()


def entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --- the mirror setting ------------------------------------------------------------------------


def test_mirror_replaces_scheme_and_host_and_keeps_the_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POLYP_RAY_MIRROR", raising=False)
    assert public.mirrored(KVASIR.url) == KVASIR.url
    monkeypatch.setenv("POLYP_RAY_MIRROR", "https://mirror.example.org/pub/")
    assert public.mirrored(KVASIR.url) == "https://mirror.example.org/pub/downloads/kvasir-seg.zip"
    assert public.mirrored(VGG16.origin) == ("https://mirror.example.org/pub/tensorflow/keras-applications/"
                                             "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")
    monkeypatch.setenv("POLYP_RAY_MIRROR", "mirror.example.org")
    with pytest.raises(ConfigError, match="POLYP_RAY_MIRROR=mirror.example.org: must be an http"):
        public.mirrored(KVASIR.url)


# --- ImageNet weights --------------------------------------------------------------------------


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


# --- the public dataset ------------------------------------------------------------------------


def test_kvasir_seg_is_downloaded_once_and_read_like_a_folder(server: Server, monkeypatch, tmp_path: Path) -> None:
    body = kvasir_zip(tmp_path)
    monkeypatch.setitem(public.PUBLIC_DATASETS, KVASIR.name,
                        dataclasses.replace(KVASIR, sha256=hashlib.sha256(body).hexdigest()))
    path = server.serve(KVASIR.url, body)
    config = DataConfig(path="kvasir-seg")
    prepared = prepare_data(config, 32)
    home = tmp_path / "cache" / "datasets"
    assert prepared.info.root == str(home / "kvasir-seg" / "Kvasir-SEG")
    assert prepared.info.layout == "kvasir" and prepared.info.n_pairs == 12
    assert sum(len(s) for s in prepared.splits.values()) == 12
    assert prepared.splits["train"].images.shape[1:] == (32, 32, 3)
    assert dataset_root(config) == home / "kvasir-seg" / "Kvasir-SEG"
    assert server.hits[path] == 1
    assert entries(home) == ["kvasir-seg", "kvasir-seg.zip"], "no temporary folders left"


def test_a_kvasir_zip_failing_the_pinned_sha256_is_refused(server: Server, tmp_path: Path) -> None:
    server.serve(KVASIR.url, kvasir_zip(tmp_path, pairs=3))  # KVASIR's real SHA-256 stays pinned
    with pytest.raises(DataError) as err:
        dataset_root(DataConfig(path="kvasir-seg"))
    message = str(err.value)
    assert "\n" not in message and KVASIR.sha256 in message
    assert f"{server.url}/downloads/kvasir-seg.zip" in message
    assert entries(tmp_path / "cache" / "datasets") == []


def test_kvasir_seg_offline_names_the_address_and_the_zip_path(offline: str, monkeypatch, tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        dataset_root(DataConfig(path="kvasir-seg"))
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"data.path: kvasir-seg: cannot download {offline}/downloads/kvasir-seg.zip")
    assert f"put the file at {tmp_path / 'cache' / 'datasets' / 'kvasir-seg.zip'}" in message
    assert f"(from {KVASIR.url}), or give your own folder as data.path" in message
    assert entries(tmp_path / "cache" / "datasets") == []
    archive = tmp_path / "cache" / "datasets" / "kvasir-seg.zip"
    archive.write_bytes(b"an older download")
    with pytest.raises(DataError, match=r"kvasir-seg.zip \(from .*\) \(the file there fails its hash check\)"):
        dataset_root(DataConfig(path="kvasir-seg"))
    body = kvasir_zip(tmp_path, pairs=4)  # the zip put there by hand is used, offline
    monkeypatch.setitem(public.PUBLIC_DATASETS, KVASIR.name,
                        dataclasses.replace(KVASIR, sha256=hashlib.sha256(body).hexdigest()))
    archive.write_bytes(body)
    root = dataset_root(DataConfig(path="kvasir-seg"))
    assert sorted(p.name for p in (root / "images").iterdir()) == [f"cju{i:04d}.jpg" for i in range(4)]


def test_a_zip_without_the_expected_folder_is_refused(server: Server, monkeypatch, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("other/readme.txt", "not Kvasir")
    body = buffer.getvalue()
    monkeypatch.setitem(public.PUBLIC_DATASETS, KVASIR.name,
                        dataclasses.replace(KVASIR, sha256=hashlib.sha256(body).hexdigest()))
    server.serve(KVASIR.url, body)
    with pytest.raises(DataError, match="expected Kvasir-SEG/images and Kvasir-SEG/masks inside"):
        dataset_root(DataConfig(path="kvasir-seg"))
    assert entries(tmp_path / "cache" / "datasets") == ["kvasir-seg.zip"], "no half-unpacked folder"


# --- before any trial: the search CLI ----------------------------------------------------------


def test_needed_weights_cover_every_encoder_the_space_can_sample(tmp_path: Path) -> None:
    from polyp_ray.config import load_job_config
    from polyp_ray.searchspace import load_searchspace

    (tmp_path / "space.yaml").write_text("model: {choices: [unet, vgg16_unet]}\n"
                                         "encoder: {choices: [conv, resnet50, mobilenetv2], when: {model: [unet]}}\n"
                                         "encoder_weights: {choices: [none, imagenet]}\n")
    (tmp_path / "job.yaml").write_text("name: w\nsearchspace: space.yaml\n")
    job, space_path = load_job_config(tmp_path / "job.yaml")
    needed = needed_weights(job, load_searchspace(space_path))
    assert needed == [("mobilenetv2", "imagenet"), ("resnet50", "imagenet"), ("vgg16", "imagenet")]
    assert needed_weights(job, None) == []  # the fixed trial: unet on conv, no weights


def test_the_search_stops_offline_before_any_trial_with_one_line(offline: str, tmp_path: Path) -> None:
    (tmp_path / "space.yaml").write_text("model: {choices: [unet, vgg16_unet]}\n")
    (tmp_path / "job.yaml").write_text(f"name: w\nsearchspace: space.yaml\nstorage_path: {tmp_path / 'exp'}\n"
                                       "trial: {encoder_weights: imagenet}\n")
    proc = subprocess.run([sys.executable, "-m", "polyp_ray.search", "--job", str(tmp_path / "job.yaml")],
                          cwd=tmp_path, env=dict(os.environ), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip()
    assert "\n" not in line and "Traceback" not in line, line
    assert f"job.yaml: trial.encoder_weights: imagenet: {VGG16.file}: cannot download {offline}/" in line
    assert f"put the file at {tmp_path / 'keras' / 'models' / VGG16.file}" in line
    assert not (tmp_path / "exp").exists()
