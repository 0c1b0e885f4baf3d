"""Several training sources (``data.path`` a list): each validated, grouped and split on its own, the union
trained on, and the test split scored per source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from polyp_ray.config import DataConfig, load_job_config
from polyp_ray.data.dataset import check_dataset, prepare_data
from polyp_ray.data.synthetic import synthetic_dataset
from polyp_ray.errors import ConfigError, DataError
from polyp_ray.evaluation import score_split
from polyp_ray.generalisation import source_tests

SPLIT = {"val_fraction": 0.25, "test_fraction": 0.25}


@pytest.fixture
def two_sources(tmp_path: Path) -> list[str]:
    return [str(synthetic_dataset(tmp_path / "a", count=12, seed=1)),
            str(synthetic_dataset(tmp_path / "b", count=16, seed=2))]


def test_the_union_keeps_each_sources_own_split(two_sources: list[str]) -> None:
    info = check_dataset(DataConfig(path=two_sources, **SPLIT)).info
    names = [Path(p).name for p in two_sources]
    assert info.n_pairs == 28 and [s["name"] for s in info.sources] == names
    for path, name in zip(two_sources, names, strict=True):
        own = check_dataset(DataConfig(path=path, **SPLIT)).info.split
        for split in ("train", "val", "test"):
            assert [s for s in info.split[split] if s.startswith(f"{name}/")] == [f"{name}/{s}" for s in own[split]]
    data = prepare_data(DataConfig(path=two_sources, **SPLIT), 32)
    train = data.splits["train"]
    assert len(train) == len(info.split["train"]) and train.images.shape[1:] == (32, 32, 3)
    test = data.splits["test"]
    assert {s.split("/")[0] for s in test.stems} == set(names)
    # Per source: the test split of each, scored apart (test_metrics.json's by_source, the report's columns).
    parts = source_tests(test)
    assert sorted(parts) == [f"{n} test" for n in sorted(names)]
    probs = np.stack([np.full((32, 32, 1), 0.6 if i % 2 else 0.2, np.float32) for i in range(len(test))])
    body = score_split(probs, test, 0.5)
    start = 0
    for name in sorted(names):
        part = parts[f"{name} test"]
        alone = score_split(probs[start:start + len(part)], part, 0.5)["summary"]
        assert body["by_source"][name]["dice"] == pytest.approx(alone["dice"])
        assert body["by_source"][name]["s_alpha"] == pytest.approx(alone["s_alpha"])
        start += len(part)


def test_each_source_is_validated_on_its_own(two_sources: list[str], tmp_path: Path) -> None:
    (tmp_path / "empty" / "images").mkdir(parents=True)
    (tmp_path / "empty" / "masks").mkdir()
    with pytest.raises(DataError) as caught:
        check_dataset(DataConfig(path=[two_sources[0], str(tmp_path / "empty")], **SPLIT))
    assert all(line.startswith(f"data.path[1] ({tmp_path / 'empty'}): ") for line in str(caught.value).splitlines())


def test_a_job_lists_its_sources(two_sources: list[str], tmp_path: Path) -> None:
    (tmp_path / "space.yaml").write_text("model: {choices: [unet]}\n")
    job = tmp_path / "job.yaml"
    job.write_text(f"searchspace: space.yaml\ndata: {{path: [{two_sources[0]}, {two_sources[1]}]}}\n")
    assert load_job_config(job)[0].trial.data.path == two_sources
    job.write_text(f"searchspace: space.yaml\ndata: {{path: [{two_sources[0]}, {two_sources[0]}]}}\n")
    with pytest.raises(ConfigError, match="data.path: a list of sources must name distinct"):
        load_job_config(job)


def test_the_pranet_protocol_job_is_a_valid_job() -> None:
    """jobs/pranet_protocol.yaml loads as it is: two training sources, the three split lists, and the
    literature's three external sets."""
    job, _ = load_job_config(Path(__file__).resolve().parents[2] / "jobs" / "pranet_protocol.yaml")
    data = job.trial.data
    assert isinstance(data.path, list) and len(data.path) == 2 and set(data.split_files) == {"train", "val", "test"}
    assert sorted(data.external_tests) == ["CVC-300", "CVC-ColonDB", "ETIS-LaribPolypDB"]
