"""The KubeRay manifests in k8s/ against KubeRay's own CRD schemas, pinned at a release
(tests/data/kuberay/SOURCE.md): each manifest validates against its kind's openAPIV3Schema with
jsonschema. Unknown fields are refused, as `kubectl apply`'s strict field validation refuses them: the
API server would drop them silently otherwise. Then the properties the search relies on: token auth,
a head without trials, a GPU worker group that every shipped job fits, the experiments on a ReadWriteMany
volume that the entrypoint writes to, a cluster deleted after its job, and one cluster spec for both
manifests."""

from __future__ import annotations

import copy
import gzip
import hashlib
import re
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import ray
import yaml

from tests.test_cluster_config import JOBS, Node, fit_problems, per_node

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
CRDS = ROOT / "tests" / "data" / "kuberay"
KUBERAY_TAG = "v1.7.0"
SHA256 = {"RayCluster": "c44704442eef0c6721ad40c1d66782c8bd3fdab9d3344306a5820910a679baa1",
          "RayJob": "01a5cf3b17c1769fda44af7e82debcd98722f0c27b9ab84d084681c6649121f5"}
FILES = {"RayCluster": "ray.io_rayclusters.yaml.gz", "RayJob": "ray.io_rayjobs.yaml.gz"}
MANIFESTS = {"RayCluster": K8S / "raycluster.yaml", "RayJob": K8S / "rayjob.yaml"}
PROJECT_IN_IMAGE = "/home/ray/polyp-ray"  # k8s/Dockerfile's WORKDIR
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=Loader)


_schemas: dict[str, dict[str, Any]] = {}


def schema(kind: str) -> dict[str, Any]:
    """The served version's openAPIV3Schema, strict about unknown fields."""
    if kind not in _schemas:
        raw = gzip.decompress((CRDS / FILES[kind]).read_bytes())
        assert hashlib.sha256(raw).hexdigest() == SHA256[kind], f"{FILES[kind]} is not the pinned {KUBERAY_TAG} file"
        crd = yaml.load(raw, Loader=Loader)
        assert crd["spec"]["names"]["kind"] == kind
        [served] = [v for v in crd["spec"]["versions"] if v.get("storage")]
        assert served["name"] == "v1"
        _schemas[kind] = strict(served["schema"]["openAPIV3Schema"])
    return _schemas[kind]


def strict(node: Any) -> Any:
    """additionalProperties: false wherever an object lists its properties and keeps no unknown fields."""
    if isinstance(node, list):
        return [strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: strict(value) for key, value in node.items()}
    keeps_unknown = out.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in out and "additionalProperties" not in out and not keeps_unknown:
        out["additionalProperties"] = False
    return out


def validate(kind: str, manifest: dict[str, Any]) -> None:
    jsonschema.Draft4Validator(schema(kind)).validate(manifest)  # OpenAPI v3's schemas are draft-4 based


def cluster_spec(kind: str) -> dict[str, Any]:
    manifest = load(MANIFESTS[kind])
    return manifest["spec"]["rayClusterSpec"] if kind == "RayJob" else manifest["spec"]


def gpu_group(kind: str) -> dict[str, Any]:
    [group] = [g for g in cluster_spec(kind)["workerGroupSpecs"]
               if "nvidia.com/gpu" in g["template"]["spec"]["containers"][0]["resources"]["limits"]]
    return group


def quantity(value: str | int) -> float:
    text = str(value)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def worker_node(kind: str) -> Node:
    group = gpu_group(kind)
    limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
    return Node(quantity(limits["cpu"]), quantity(limits["nvidia.com/gpu"]), group["maxReplicas"])


@pytest.mark.parametrize("kind", sorted(MANIFESTS))
def test_manifest_validates_against_kuberays_crd(kind: str) -> None:
    manifest = load(MANIFESTS[kind])
    assert manifest["apiVersion"] == "ray.io/v1" and manifest["kind"] == kind
    validate(kind, manifest)


@pytest.mark.parametrize("kind", sorted(MANIFESTS))
def test_the_schema_check_refuses_broken_manifests(kind: str) -> None:
    spec_path = ["spec", "rayClusterSpec"] if kind == "RayJob" else ["spec"]

    def at(manifest: dict[str, Any]) -> dict[str, Any]:
        for key in spec_path:
            manifest = manifest[key]
        return manifest

    def typo(m: dict[str, Any]) -> None:
        at(m)["workerGroupSpecs"][0]["maxReplica"] = 4

    def no_head(m: dict[str, Any]) -> None:
        del at(m)["headGroupSpec"]

    def no_containers(m: dict[str, Any]) -> None:
        del at(m)["headGroupSpec"]["template"]["spec"]["containers"]

    def replicas_as_text(m: dict[str, Any]) -> None:
        at(m)["workerGroupSpecs"][0]["replicas"] = "four"

    def start_param_as_number(m: dict[str, Any]) -> None:
        at(m)["headGroupSpec"]["rayStartParams"]["num-cpus"] = {"value": 0}

    def bad_auth_mode(m: dict[str, Any]) -> None:
        at(m)["authOptions"]["mode"] = "password"

    for breakage in (typo, no_head, no_containers, replicas_as_text, start_param_as_number, bad_auth_mode):
        manifest = copy.deepcopy(load(MANIFESTS[kind]))
        breakage(manifest)
        with pytest.raises(jsonschema.ValidationError):
            validate(kind, manifest)
    job = load(MANIFESTS["RayJob"])
    job["spec"]["shutdownAfterJobFinish"] = True  # a typo the API server would drop silently
    with pytest.raises(jsonschema.ValidationError):
        validate("RayJob", job)


def test_both_manifests_run_the_same_cluster() -> None:
    assert cluster_spec("RayJob") == cluster_spec("RayCluster")


def test_token_auth_pinned_ray_and_a_head_without_trials() -> None:
    spec = cluster_spec("RayCluster")
    assert spec["authOptions"]["mode"] == "token"
    assert spec["rayVersion"] == ray.__version__
    dockerfile = (K8S / "Dockerfile").read_text()
    assert re.search(rf"^FROM rayproject/ray:{re.escape(ray.__version__)}-py311", dockerfile, re.M), dockerfile
    assert f'"ray[default]=={ray.__version__}"' in dockerfile and "[gpu]" in dockerfile
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    head = spec["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert "nvidia.com/gpu" not in head["resources"]["limits"]


@pytest.mark.parametrize("job_path", JOBS, ids=lambda p: p.name)
def test_shipped_jobs_fit_the_gpu_worker_group(job_path: Path) -> None:
    from polyp_ray.config import load_job_config

    job, _ = load_job_config(job_path, [])
    node = worker_node("RayCluster")
    problems = fit_problems(job.resources.cpu, job.resources.gpu, {"gpu": node, "head": Node(0, 0, 1)})
    assert not problems, f"{job_path.name} on k8s/raycluster.yaml: {problems}"
    if job.resources.gpu:  # the GPU jobs are sized for it: every trial they allow at once has a GPU share
        assert job.max_concurrent <= (per_node(job.resources.cpu, job.resources.gpu, node) or 0) * node.count


def test_two_kvasir_trials_per_gpu() -> None:
    from polyp_ray.config import load_job_config

    job, _ = load_job_config(ROOT / "jobs" / "kvasir.yaml", [])
    node = worker_node("RayJob")
    assert node.gpu == 1 and per_node(job.resources.cpu, job.resources.gpu, node) == 2


def test_the_job_runs_a_shipped_search_on_the_volume_and_cleans_up() -> None:
    manifest = load(MANIFESTS["RayJob"])
    spec = manifest["spec"]
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] > 0
    argv = shlex.split(spec["entrypoint"])
    assert argv[:3] == ["python", "-m", "polyp_ray.search"]
    job = Path(argv[argv.index("--job") + 1])
    assert job.is_relative_to(PROJECT_IN_IMAGE) and (ROOT / job.relative_to(PROJECT_IN_IMAGE)).is_file(), job
    assert argv[argv.index("--address") + 1] == "auto"
    workers = sum(g["replicas"] for g in spec["rayClusterSpec"]["workerGroupSpecs"])
    assert int(argv[argv.index("--min-nodes") + 1]) == 1 + workers  # the head and every worker
    storage = argv[argv.index("--set") + 1]
    assert storage.startswith("storage_path=")
    mount = storage.removeprefix("storage_path=")
    claim = load(K8S / "pvc.yaml")
    assert claim["kind"] == "PersistentVolumeClaim" and "ReadWriteMany" in claim["spec"]["accessModes"]
    pods = [spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"],
            *(g["template"]["spec"] for g in spec["rayClusterSpec"]["workerGroupSpecs"]),
            load(K8S / "report-reader.yaml")["spec"]]
    for pod in pods:  # every pod mounts the claim where the search writes (the reader to copy reports out)
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["mountPath"]: m["name"] for c in pod["containers"] for m in c.get("volumeMounts", [])}
        assert mount in mounts, (mount, mounts)
        assert volumes[mounts[mount]]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    env = yaml.safe_load(spec["runtimeEnvYAML"])["env_vars"]
    assert env["POLYP_RAY_CACHE"].startswith(mount + "/")  # the dataset download is kept between jobs
