"""Where an experiment lives: a local folder, or a URI (s3://, gs://, file://) on a cluster.

Tune writes trial results and checkpoints straight to the storage path. Our own summary files are
written to a local folder first; for a URI they are then uploaded beside Tune's, and the per-epoch
results are mirrored locally so the report can be built on the driver.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs

from polyp_ray.errors import ConfigError
from polyp_ray.experiment import MIRRORED, OURS, ExperimentLayout


@dataclass(frozen=True)
class ExperimentStore:
    storage: str  # what Tune gets as storage_path: an absolute local path or a URI
    name: str
    local: Path  # the experiment folder itself (local storage) or its local mirror (URI)

    @property
    def layout(self) -> ExperimentLayout:
        return ExperimentLayout(self.local)

    @property
    def remote(self) -> bool:
        return is_uri(self.storage)

    @property
    def uri(self) -> str:
        return f"{self.storage.rstrip('/')}/{self.name}"

    def exists(self) -> bool:
        fs, path = pafs.FileSystem.from_uri(self.uri) if self.remote else (pafs.LocalFileSystem(), self.uri)
        return fs.get_file_info(path).type != pafs.FileType.NotFound

    def publish(self) -> None:
        """Upload our local summary folder next to Tune's files."""
        if self.remote:
            pafs.copy_files(str(self.layout.ours), f"{self.uri}/{OURS}")

    def mirror_results(self) -> None:
        """Copy each trial's per-epoch results from storage into the local folder."""
        if not self.remote:
            return
        fs, root = pafs.FileSystem.from_uri(self.uri)
        for info in fs.get_file_info(pafs.FileSelector(root, recursive=True)):
            relative = info.path[len(root):].lstrip("/")
            if info.type == pafs.FileType.File and relative.count("/") == 1 and relative.endswith(MIRRORED):
                target = self.local / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                with fs.open_input_stream(info.path) as source:
                    target.write_bytes(source.read())


def is_uri(storage_path: str) -> bool:
    return "://" in storage_path


def locate(storage_path: str, job_name: str, name: str | None, resume: bool, cache: Path) -> ExperimentStore:
    """Where a run's experiment lives: ``name``, the job's latest (``resume``), or a new timestamped one."""
    storage = storage_path if is_uri(storage_path) else str(Path(storage_path).expanduser().resolve())
    if not name and resume:
        name = _latest(storage, job_name)
    name = name or f"{job_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if is_uri(storage):  # the local mirror lives in the job's cache folder (DataConfig.resolved_cache_dir)
        return ExperimentStore(storage, name, cache / "experiments" / name)
    return ExperimentStore(storage, name, Path(storage) / name)


def _latest(storage: str, job_name: str) -> str:
    fs, root = pafs.FileSystem.from_uri(storage) if is_uri(storage) else (pafs.LocalFileSystem(), storage)
    runs = [i for i in fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
            if i.type == pafs.FileType.Directory and i.base_name.startswith(f"{job_name}-")]
    if not runs:
        raise ConfigError(f"--resume: no experiment of job {job_name!r} under {storage}")
    return max(runs, key=lambda i: i.mtime_ns or 0).base_name
