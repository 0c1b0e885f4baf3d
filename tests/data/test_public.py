"""Kvasir-SEG by name: downloaded once from an HTTP server on 127.0.0.1 (tests/http_files.py), checked
against its pinned SHA-256, unpacked whole or not at all, then read like any dataset folder."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest

from polyp_ray.config import DataConfig
from polyp_ray.data import public
from polyp_ray.data.dataset import dataset_root, prepare_data
from polyp_ray.errors import DataError
from tests.conftest import write_pair
from tests.http_files import Server, entries

KVASIR = public.PUBLIC_DATASETS["kvasir-seg"]


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
