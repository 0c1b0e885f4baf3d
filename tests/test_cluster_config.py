"""The shipped Ray cluster-launcher configs (``cluster*.yaml`` at the repository root).

Each one goes through Ray's own config preparation and schema validation, the steps ``ray up`` runs
before it talks to a cloud (``prepare_config`` merges the provider defaults, ``validate_config``
checks ``ray-schema.json``). The provider bootstrap that follows in ``ray up`` needs cloud
credentials and is not run. Then the properties the search relies on are checked: explicit
resources, a GPU worker type, the Ray version pinned in the image and the install, token
authentication on every node, no mount of a folder only our machines have, shipped jobs that
name data every user can get (synthetic, or a public dataset fetched on the head), and shipped jobs whose
per-trial resources fit the configs' node types without leaving GPUs idle.
"""

from __future__ import annotations

import copy
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(ROOT.glob("cluster*.yaml"))
AWS_CONFIG = ROOT / "cluster.yaml"
LOCAL_CONFIG = ROOT / "cluster-local.yaml"
SHARED_STORAGE = "/mnt/shared"  # where cluster.yaml mounts Tune's storage on every node


def load(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), f"{path.name}: not a YAML mapping"
    return loaded


def prepared(raw: dict[str, Any]) -> dict[str, Any]:
    """What `ray up` holds after its offline steps; raises on an invalid config."""
    config = prepare_config(copy.deepcopy(raw))
    validate_config(config)
    return config


def start_commands(config: dict[str, Any]) -> list[str]:
    return [
        c for c in config["head_start_ray_commands"] + config["worker_start_ray_commands"] if "ray start" in c
    ]


def flag_value(command: str, flag: str) -> int | None:
    match = re.search(rf"{flag}[= ](\d+)\b", command)
    return int(match.group(1)) if match else None


def install_commands(config: dict[str, Any]) -> list[str]:
    return [c for c in config["setup_commands"] if "pip install" in c and not c.lstrip().startswith("#")]


@pytest.fixture(params=CONFIGS, ids=lambda p: p.name)
def config_path(request: pytest.FixtureRequest) -> Path:
    return request.param


def test_both_configs_are_shipped() -> None:
    assert {p.name for p in CONFIGS} >= {"cluster.yaml", "cluster-local.yaml"}


def test_ray_prepares_and_validates(config_path: Path) -> None:
    config = prepared(load(config_path))
    assert config["available_node_types"], "no node types after preparation"
    assert config["head_node_type"] in config["available_node_types"]
    for name, node_type in config["available_node_types"].items():
        assert "resources" in node_type and "node_config" in node_type, name


def test_token_auth_on_every_node(config_path: Path) -> None:
    raw = load(config_path)
    commands = start_commands(raw)
    assert len(commands) == 2, "expected one `ray start` for the head and one for the workers"
    mounted = list(raw["file_mounts"])
    for command in commands:
        assert "RAY_AUTH_MODE=token" in command, command
        path = re.search(r"RAY_AUTH_TOKEN_PATH=(\S+)", command)
        assert path, f"no RAY_AUTH_TOKEN_PATH in {command!r}"
        token_dir = path.group(1).replace("$HOME", "~").rsplit("/", 1)[0]
        assert token_dir in mounted, f"{token_dir} (the token's folder) is not in file_mounts {mounted}"


def test_installs_project_with_gpu_extra_and_pinned_ray(config_path: Path) -> None:
    raw = load(config_path)
    installs = install_commands(raw)
    assert any("[gpu]" in c for c in installs), f"no setup command installs the [gpu] extra: {installs}"
    pins = {m for c in installs for m in re.findall(r"ray\[[^\]]*\]==([\w.]+)", c)}
    assert pins == {ray.__version__}, f"setup pins Ray {pins}, the venv has {ray.__version__}"
    project_dir = next(remote for remote, local in raw["file_mounts"].items() if local in (".", "./"))
    assert any(project_dir.replace("~", "$HOME") in c or project_dir in c for c in installs if "[gpu]" in c)


def test_mounts_only_what_every_user_has(config_path: Path) -> None:
    # `ray up` fails on a local path that does not exist: the repository and the user's own token
    # folder exist everywhere; a dataset beside our clones (../shared/...) does not.
    for remote, local in load(config_path)["file_mounts"].items():
        assert local in (".", "./") or local.startswith("~/"), f"file_mounts: {remote}: {local}"


PAPER_PROTOCOLS = {"pranet_protocol.yaml"}


@pytest.mark.parametrize("job", sorted((ROOT / "jobs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_jobs_name_data_every_user_can_get(job: Path) -> None:
    from polyp_ray.config import SYNTHETIC
    from polyp_ray.data.public import PUBLIC_DATASETS

    data = load(job)["data"]
    if job.name in PAPER_PROTOCOLS:  # a paper's protocol needs the paper's sets: the job's comments list them
        assert data.get("split_files") and "What you supply" in job.read_text(), job.name
        return
    path = data["path"]
    assert path == SYNTHETIC or path in PUBLIC_DATASETS, f"{job.name}: data.path {path!r}"


def test_idle_timeout_and_max_workers(config_path: Path) -> None:
    raw = load(config_path)
    assert raw["idle_timeout_minutes"] > 0
    assert raw["max_workers"] >= 1


# --- cluster.yaml (AWS) ------------------------------------------------------------------------


def test_aws_every_node_type_has_explicit_cpu_and_gpu() -> None:
    raw = load(AWS_CONFIG)
    for name, node_type in raw["available_node_types"].items():
        resources = node_type.get("resources")
        assert resources and {"CPU", "GPU"} <= set(resources), f"{name}: resources must give CPU and GPU"


def test_aws_head_takes_no_gpu_work() -> None:
    raw = load(AWS_CONFIG)
    head = raw["available_node_types"][raw["head_node_type"]]
    assert head["resources"]["GPU"] == 0
    assert head["resources"]["CPU"] == 0, "the head should not run trials"
    assert head.get("max_workers", 0) == 0


def test_aws_gpu_worker_type() -> None:
    config = prepared(load(AWS_CONFIG))
    head = config["head_node_type"]
    workers = {name: t for name, t in config["available_node_types"].items() if name != head}
    gpu_types = {name: t for name, t in workers.items() if t["resources"].get("GPU", 0) >= 1}
    assert gpu_types, "no worker type requests a GPU"
    for name, node_type in gpu_types.items():
        node_config = node_type["node_config"]
        assert node_config["InstanceType"] == "g5.xlarge", name  # 1x A10G
        assert node_type["resources"]["GPU"] == 1, f"{name}: g5.xlarge has exactly one GPU"
        assert node_config.get("InstanceMarketOptions", {}).get("MarketType") == "spot", name
        assert node_type["min_workers"] == 0, f"{name}: should scale to zero"
        assert 1 <= node_type["max_workers"] <= config["max_workers"], name


def test_aws_every_node_type_names_its_ami() -> None:
    # Ray's built-in default AMI carries a CUDA 11 driver, too old for TensorFlow's CUDA 12 wheels.
    raw = load(AWS_CONFIG)
    for name, node_type in raw["available_node_types"].items():
        assert node_type["node_config"].get("ImageId", "").startswith("ami-"), name


def test_aws_docker_image_matches_installed_ray() -> None:
    docker = load(AWS_CONFIG)["docker"]
    images = {
        docker["image"],
        docker.get("head_image", docker["image"]),
        docker.get("worker_image", docker["image"]),
    }
    python_tag = f"py{sys.version_info.major}{sys.version_info.minor}"
    for image in images:
        repo, _, tag = image.partition(":")
        assert repo == "rayproject/ray", image  # rayproject/ray-ml is discontinued
        assert tag.split("-")[0] == ray.__version__, f"{image}: tag is not Ray {ray.__version__}"
        assert python_tag in tag.split("-"), f"{image}: not {python_tag}"
        assert tag.endswith("-gpu"), image


def test_aws_shared_storage_is_mounted_into_the_container() -> None:
    raw = load(AWS_CONFIG)
    assert any(SHARED_STORAGE in c for c in raw["initialization_commands"])
    assert f"-v {SHARED_STORAGE}:{SHARED_STORAGE}" in raw["docker"]["run_options"]


# --- cluster-local.yaml (on-premise) -----------------------------------------------------------


def test_local_provider_and_explicit_start_resources() -> None:
    raw = load(LOCAL_CONFIG)
    assert raw["provider"]["type"] == "local"
    assert raw["provider"]["head_ip"] and raw["provider"]["worker_ips"]
    assert raw["max_workers"] == len(raw["provider"]["worker_ips"])
    # the local provider rejects available_node_types, so resources are set on `ray start`
    [head] = [c for c in raw["head_start_ray_commands"] if "ray start" in c]
    [worker] = [c for c in raw["worker_start_ray_commands"] if "ray start" in c]
    assert flag_value(head, "--num-gpus") == 0 and flag_value(head, "--num-cpus") == 0, head
    assert (flag_value(worker, "--num-gpus") or 0) >= 1, worker


# --- the shipped jobs fit the shipped clusters ---------------------------------------------------

JOBS = sorted((ROOT / "jobs").glob("*.yaml"))


@dataclass(frozen=True)
class Node:
    cpu: float | None  # None: not declared, Ray counts the machine's cores when the node starts
    gpu: float
    count: int  # at most this many nodes of the type


def node_types(path: Path) -> dict[str, Node]:
    raw = load(path)
    if "available_node_types" in raw:
        return {name: Node(t["resources"].get("CPU"), t["resources"].get("GPU", 0), t.get("max_workers", 0) or 1)
                for name, t in raw["available_node_types"].items()}
    # the local provider: what each `ray start` declares (a missing --num-gpus would mean "detected": count 0)
    [head] = [c for c in raw["head_start_ray_commands"] if "ray start" in c]
    [worker] = [c for c in raw["worker_start_ray_commands"] if "ray start" in c]
    return {role: Node(flag_value(command, "--num-cpus"), flag_value(command, "--num-gpus") or 0, count)
            for role, command, count in (("head", head, 1), ("worker", worker, raw["max_workers"]))}


def per_node(cpu: float, gpu: float, node: Node) -> int | None:
    """Trials one node runs at once (None: bounded only by its undeclared CPU count)."""
    by_gpu = math.floor(node.gpu / gpu + 1e-9) if gpu else None
    by_cpu = math.floor(node.cpu / cpu + 1e-9) if node.cpu is not None else None
    bounds = [b for b in (by_gpu, by_cpu) if b is not None]
    return min(bounds) if bounds else None


def fit_problems(cpu: float, gpu: float, nodes: dict[str, Node]) -> list[str]:
    """Why trials of ``cpu`` CPUs + ``gpu`` GPUs do not fit ``nodes``: none holds one, or a node whose
    GPUs take several fractional-GPU trials has too few CPUs to run them side by side (GPUs left idle)."""
    holders = {name: n for name, n in nodes.items() if per_node(cpu, gpu, n) != 0}
    if not holders:
        return [f"no node type holds one trial of {cpu:g} CPU + {gpu:g} GPU: {nodes}"]
    problems = []
    for name, node in holders.items():
        if 0 < gpu < 1 and node.gpu >= 1 and node.cpu is not None:
            side_by_side = math.floor(node.gpu / gpu + 1e-9)
            if node.cpu < side_by_side * cpu:
                problems.append(f"{name}: its {node.gpu:g} GPU(s) take {side_by_side} trials of {gpu:g} GPU, but "
                                f"its {node.cpu:g} CPUs run only {math.floor(node.cpu / cpu)} of {cpu:g} CPUs")
    return problems


@pytest.mark.parametrize("job_path", JOBS, ids=lambda p: p.name)
def test_shipped_jobs_fit_every_shipped_cluster(job_path: Path, config_path: Path) -> None:
    from polyp_ray.config import load_job_config

    job, _ = load_job_config(job_path, [])  # the resolved resources, defaults included
    problems = fit_problems(job.resources.cpu, job.resources.gpu, node_types(config_path))
    assert not problems, f"{job_path.name} on {config_path.name}: {problems}"


@pytest.mark.parametrize("job_path", [p for p in JOBS if load(p).get("resources", {}).get("gpu")],
                         ids=lambda p: p.name)
def test_gpu_jobs_max_concurrent_trials_run_at_once_on_cluster_yaml(job_path: Path) -> None:
    # The GPU jobs are sized for cluster.yaml: trials beyond what its workers hold only queue, while
    # Optuna has already proposed them without the results of the ones before.
    from polyp_ray.config import load_job_config

    job, _ = load_job_config(job_path, [])
    capacity = sum((per_node(job.resources.cpu, job.resources.gpu, n) or 0) * n.count
                   for n in node_types(AWS_CONFIG).values())
    assert job.max_concurrent <= capacity, f"{job_path.name}: max_concurrent {job.max_concurrent} > {capacity}"


def test_the_fit_check_sees_idle_gpus_and_trials_that_fit_nowhere() -> None:
    g5 = {"head": Node(0, 0, 1), "gpu_worker": Node(4, 1, 4)}
    # the shipped kvasir job before the fix: half a GPU each, but 4 CPUs each, so one trial per g5.xlarge
    assert fit_problems(4, 0.5, g5) == ["gpu_worker: its 1 GPU(s) take 2 trials of 0.5 GPU, but its 4 CPUs "
                                        "run only 1 of 4 CPUs"]
    assert fit_problems(2, 0.5, g5) == [] and fit_problems(4, 1, g5) == [] and fit_problems(1, 0, g5) == []
    assert fit_problems(8, 1, g5) and fit_problems(1, 2, g5)  # more CPUs or GPUs than any node has
    assert per_node(2, 0.5, g5["gpu_worker"]) == 2 and per_node(1, 0, g5["head"]) == 0
    local = node_types(LOCAL_CONFIG)
    assert local["head"] == Node(0, 0, 1) and local["worker"].gpu >= 1 and local["worker"].cpu is None


# --- the validator really rejects broken configs -----------------------------------------------


def _drop_node_config(c: dict[str, Any]) -> None:
    del c["available_node_types"]["gpu_worker"]["node_config"]


def _drop_resources(c: dict[str, Any]) -> None:
    del c["available_node_types"]["gpu_worker"]["resources"]


def _unknown_top_level_key(c: dict[str, Any]) -> None:
    c["idle_timeout_minute"] = 5  # a typo of idle_timeout_minutes


def _fractional_gpu(c: dict[str, Any]) -> None:
    c["available_node_types"]["gpu_worker"]["resources"]["GPU"] = 0.5


def _unknown_node_type_key(c: dict[str, Any]) -> None:
    c["available_node_types"]["gpu_worker"]["min_worker"] = 1


def _head_type_missing(c: dict[str, Any]) -> None:
    c["head_node_type"] = "no_such_type"


def _min_workers_over_max(c: dict[str, Any]) -> None:
    c["available_node_types"]["gpu_worker"]["min_workers"] = c["max_workers"] + 1


def _unknown_docker_key(c: dict[str, Any]) -> None:
    c["docker"]["imagee"] = c["docker"]["image"]


BREAKAGES = [
    (_drop_node_config, jsonschema.ValidationError),
    (_drop_resources, jsonschema.ValidationError),
    (_unknown_top_level_key, jsonschema.ValidationError),
    (_fractional_gpu, jsonschema.ValidationError),
    (_unknown_node_type_key, jsonschema.ValidationError),
    (_unknown_docker_key, jsonschema.ValidationError),
    (_head_type_missing, ValueError),
    (_min_workers_over_max, ValueError),
]


@pytest.mark.parametrize(("breakage", "error"), BREAKAGES, ids=lambda v: getattr(v, "__name__", ""))
def test_validator_rejects_broken_copy(breakage, error) -> None:
    broken = load(AWS_CONFIG)
    breakage(broken)
    with pytest.raises(error):
        prepared(broken)


def test_local_provider_rejects_node_types() -> None:
    broken = load(LOCAL_CONFIG)
    broken["available_node_types"] = {"gpu": {"node_config": {}, "resources": {"GPU": 1}}}
    with pytest.raises(Exception, match="not supported for on-premise clusters"):
        prepared(broken)
