from pathlib import Path

import pytest

from polyp_ray.config import TrialConfig, apply_overrides, load_job_config, trial_from_dict
from polyp_ray.errors import ConfigError


def _write(tmp_path: Path, text: str, name: str = "job.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    (tmp_path / "space.yaml").write_text("learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}\n")
    return path


def test_job_loads_with_data_feeding_the_trial(tmp_path: Path) -> None:
    job, space = load_job_config(_write(tmp_path, "name: j\nsearchspace: space.yaml\nmax_epochs: 4\n"
                                                  "data: {path: synthetic, split_seed: 7}\ntrial: {base_width: 4}\n"))
    assert job.max_epochs == 4 and job.trial.base_width == 4 and job.trial.data.split_seed == 7
    assert space == (tmp_path / "space.yaml").resolve()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nmae: x\n", "job.yaml: nmae: unknown key"),
        ("max_epochs: three\n", "job.yaml: max_epochs: expected int, got 'three'"),
        ("grace_period: 9\nmax_epochs: 3\n", "job.yaml: grace_period: must be in [1, max_epochs]"),
        ("trial: {model: resnet}\n", "job.yaml: model: unknown model 'resnet'"),
        ("trial: {image_size: 100}\n", "job.yaml: image_size: must be a multiple of 32"),
        ("data: {split_sed: 1}\n", "job.yaml: trial.data.split_sed: unknown key"),
        ("resources: {cpu: 0}\n", "job.yaml: resources.cpu: must be > 0"),
        ("searchspace: nowhere.yaml\n", "job.yaml: searchspace: nowhere.yaml not found"),
        ("max_epochs: [1\n", "job.yaml (line 3): not valid YAML"),
        ("max_epochs: 2\n- b\n", "job.yaml (line 3): not valid YAML"),
    ],
)
def test_bad_job_files_name_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text if text.startswith("searchspace") else "searchspace: space.yaml\n" + text)
    with pytest.raises(ConfigError) as err:
        load_job_config(path)
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_overrides_are_parsed_as_yaml_and_nest() -> None:
    data = apply_overrides({}, ["trial.base_width=16", "data.path=/x", "time_budget_s=1.5", "name=abc"])
    assert data == {"trial": {"base_width": 16}, "data": {"path": "/x"}, "time_budget_s": 1.5, "name": "abc"}
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_overrides({}, ["novalue"])


def test_trial_config_defaults_are_valid_and_ints_accepted_for_floats() -> None:
    TrialConfig().validate("defaults")
    config = trial_from_dict({"aug_strength": 0}, "defaults")
    assert config.aug_strength == 0.0 and isinstance(config.aug_strength, float)
    with pytest.raises(ConfigError, match="defaults: learning_rate: must be in"):
        trial_from_dict({"learning_rate": 2}, "defaults")


def test_a_top_level_list_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="list.yaml: expected a mapping"):
        load_job_config(path)
