import dataclasses
from pathlib import Path

import pytest
import yaml

from polyp_ray.config import (
    HyperParams,
    JobConfig,
    RunSettings,
    TrialConfig,
    apply_overrides,
    load_job_config,
    trial_config_for,
    trial_from_dict,
)
from polyp_ray.errors import ConfigError
from polyp_ray.search import _route_override
from polyp_ray.searchspace import load_searchspace


def _write(tmp_path: Path, text: str, name: str = "job.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    (tmp_path / "space.yaml").write_text("learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}\n")
    return path


def test_job_loads_with_data_feeding_the_trial(tmp_path: Path) -> None:
    job, space = load_job_config(_write(tmp_path, "name: j\nsearchspace: space.yaml\n"
                                                  "data: {path: synthetic, split_seed: 7}\n"
                                                  "trial: {base_width: 4, epochs: 4}\n"))
    assert job.epochs == job.trial.epochs == 4 and job.trial.base_width == 4 and job.trial.data.split_seed == 7
    assert space == (tmp_path / "space.yaml").resolve()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nmae: x\n", "job.yaml: nmae: unknown key"),
        ("trial: {epochs: three}\n", "job.yaml: trial.epochs: expected int, got 'three'"),
        ("grace_period: 9\ntrial: {epochs: 3}\n", "job.yaml: grace_period: must be in [1, trial.epochs]"),
        ("trial: {model: resnet}\n", "job.yaml: model: unknown model 'resnet'"),
        ("trial: {image_size: 100}\n", "job.yaml: image_size: must be a multiple of 32"),
        ("data: {split_sed: 1}\n", "job.yaml: data.split_sed: unknown key"),
        ("data: {path: a}\ntrial:\n  image_size: 64\n  image_size: 96\n",
         "job.yaml: key 'image_size' appears twice: line 4 and line 5"),
        ("resources: {cpu: 0}\n", "job.yaml: resources.cpu: must be > 0"),
        ("searchspace: nowhere.yaml\n", "job.yaml: searchspace: nowhere.yaml not found"),
        ("num_samples: [1\n", "job.yaml (line 3): not valid YAML"),
        ("num_samples: 2\n- b\n", "job.yaml (line 3): not valid YAML"),
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


def test_exponent_floats_without_a_dot_are_floats_in_jobs_spaces_and_overrides(tmp_path: Path) -> None:
    # PyYAML alone reads 1e-3 as the string "1e-3": a learning rate written as in Python would be refused.
    assert yaml.safe_load("x: 1e-3") == {"x": "1e-3"}
    job_path = _write(tmp_path, "name: j\nsearchspace: space.yaml\ntrial: {learning_rate: 3e-4}\n")
    (tmp_path / "space.yaml").write_text("learning_rate: {low: 1e-5, high: 2E-2, log: true}\n")
    job, space_path = load_job_config(job_path, ["time_budget_s=6e2"])
    assert job.trial.learning_rate == 3e-4 and job.time_budget_s == 600.0
    param = next(p for p in load_searchspace(space_path).params if p.name == "learning_rate")
    assert (param.low, param.high) == (1e-5, 2e-2)
    assert apply_overrides({}, ["a=-1e-2", "b=1e3x", "c=7"]) == {"a": -0.01, "b": "1e3x", "c": 7}


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


SEARCHABLE = sorted(f.name for f in dataclasses.fields(HyperParams))


def test_a_trial_is_its_hyperparameters_and_its_run_settings() -> None:
    config = TrialConfig(image_size=64, epochs=3, output_dir="out")
    assert isinstance(config, HyperParams) and isinstance(config, RunSettings)
    names = {f.name for f in dataclasses.fields(TrialConfig)}
    assert names == set(SEARCHABLE) | {f.name for f in dataclasses.fields(RunSettings)}
    assert not set(SEARCHABLE) & {f.name for f in dataclasses.fields(RunSettings)}
    flat = dataclasses.asdict(config)  # trial_config.json stays flat
    assert flat["image_size"] == 64 and flat["epochs"] == 3 and flat["output_dir"] == "out"
    with pytest.raises(ConfigError, match="^t: epochs: must be >= 1$"):
        TrialConfig(epochs=0).validate("t")  # RunSettings' own check, through TrialConfig.validate
    with pytest.raises(ConfigError, match="^t: threshold: must be in"):
        TrialConfig(threshold=1.5).validate("t")  # ... and HyperParams'


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(RunSettings)])
def test_a_space_naming_a_run_setting_is_refused_listing_the_searchable_names(tmp_path: Path, name: str) -> None:
    path = tmp_path / "space.yaml"
    path.write_text(f"learning_rate: {{low: 1.0e-4, high: 1.0e-2}}\n{name}: {{value: 3}}\n")
    with pytest.raises(ConfigError) as err:
        load_searchspace(path)
    line = str(err.value)
    assert line.startswith(f"{path}: {name}: unknown or unsearchable parameter") and "\n" not in line
    assert f"the job sets trial.{name}" in line
    assert line.endswith(f"searchable: {SEARCHABLE}")


def test_every_hyperparameter_is_accepted_by_the_space_loader(tmp_path: Path) -> None:
    path = tmp_path / "space.yaml"
    defaults = {f.name: getattr(HyperParams(), f.name) for f in dataclasses.fields(HyperParams)}
    path.write_text(yaml.safe_dump({name: {"value": value} for name, value in defaults.items()}))
    space = load_searchspace(path)
    assert sorted(p.name for p in space.params) == SEARCHABLE
    assert space.define_by_run(None) == defaults  # all fixed: nothing asks the (absent) Optuna trial


@pytest.mark.parametrize(("text", "overrides", "where"), [
    ("max_epochs: 4\n", [], "job.yaml"),
    ("", ["max_epochs=4"], "--set"),
])
def test_the_old_max_epochs_key_gives_the_rename_line(tmp_path: Path, text: str, overrides: list[str],
                                                      where: str) -> None:
    path = _write(tmp_path, "searchspace: space.yaml\n" + text)
    with pytest.raises(ConfigError) as err:
        load_job_config(path, [_route_override(item) for item in overrides])
    assert str(err.value) == (f"{path if where == 'job.yaml' else where}: max_epochs: renamed: set trial.epochs "
                              "(the epochs every trial trains for, ASHA's max_t)")


def test_set_epochs_lands_in_trial_epochs_and_every_trial_trains_for_it(tmp_path: Path) -> None:
    path = _write(tmp_path, "searchspace: space.yaml\nseed: 1\ngrace_period: 2\ntrial: {epochs: 5}\n")
    assert _route_override("epochs=3") == "trial.epochs=3"
    assert _route_override("seed=4") == "seed=4"  # the sampler's seed: a job key first
    assert _route_override("trial.seed=4") == "trial.seed=4"
    job, _ = load_job_config(path, [_route_override(item) for item in ["epochs=3", "seed=4", "model=encoder_decoder"]])
    assert job.trial.epochs == job.epochs == 3 and job.seed == 4 and job.trial.seed == 0
    assert job.trial.model == "encoder_decoder"
    assert not hasattr(JobConfig(), "max_epochs")
    assert trial_config_for(job, {"learning_rate": 0.002}).epochs == 3  # the job's epochs, not overridden
    with pytest.raises(ConfigError, match=r"^--set: grace_period: must be in \[1, trial.epochs\]$"):
        load_job_config(path, [_route_override("epochs=1")])
    debug, _ = load_job_config(path, [_route_override("epochs=1")], debug=True)  # one trial: grace clipped
    assert debug.epochs == debug.grace_period == 1


def test_asha_rungs_default_to_the_measured_ones_and_fit_any_epochs(tmp_path: Path) -> None:
    # Grace 2 / factor 2 (bench/README.md section 11), clipped where a job trains fewer epochs and leaves
    # grace_period out; a grace_period the job writes is still checked as written.
    job, _ = load_job_config(_write(tmp_path, "searchspace: space.yaml\ntrial: {epochs: 8}\n"))
    assert (job.grace_period, job.reduction_factor) == (2, 2)
    job, _ = load_job_config(_write(tmp_path, "searchspace: space.yaml\ntrial: {epochs: 1}\n"))
    assert job.grace_period == 1
    job, _ = load_job_config(_write(tmp_path, "searchspace: space.yaml\ntrial: {epochs: 8}\n"), ["trial.epochs=1"])
    assert job.grace_period == 1
    with pytest.raises(ConfigError, match=r"grace_period: must be in \[1, trial.epochs\]$"):
        load_job_config(_write(tmp_path, "searchspace: space.yaml\ngrace_period: 2\ntrial: {epochs: 1}\n"))


def test_the_default_search_starts_from_the_debug_runs_own_point_and_searches_image_size() -> None:
    # The default search must be able to beat the one run a user would make instead (`--debug`): its first
    # trial is that run's point, whatever HyperParams' defaults become, and image size is sampled.
    from importlib import resources

    default = Path(str(resources.files("polyp_ray") / "defaults" / "default.yaml"))
    job, space_path = load_job_config(default)
    debug = load_job_config(default, debug=True)[0].trial
    space = load_searchspace(space_path)
    point = job.points_to_evaluate[0]
    assert set(point) == {param.name for param in space.params}  # the whole point, nothing left to sample
    assert point == {name: getattr(debug, name) for name in point}
    space.check_point(point, "default.yaml")
    assert {debug.image_size, 64} <= set(space.possible("image_size", None))


@pytest.mark.parametrize(("keys", "expected"), [
    ("cross_validation: {folds: 1}", "job.yaml: cross_validation.folds: must be >= 2"),
    ("cross_validation: {top_k: 0}", "job.yaml: cross_validation.top_k: must be >= 1"),
    ("cross_validation: {top_k: 9}", "job.yaml: cross_validation.top_k: must be <= num_samples (8)"),
    ("cross_validation: {folds: 40}\ndata: {synthetic_count: 40, test_fraction: 0.25}",
     "job.yaml: cross_validation.folds: 40 folds need at least 40 train+val images; the data gives 30"),
    ("cross_validation: {fold: 3}", "job.yaml: cross_validation.fold: unknown key"),
    ("cross_validation: {folds: two}", "job.yaml: cross_validation.folds: expected int"),
])
def test_bad_cross_validation_keys_are_one_line_naming_the_key(tmp_path: Path, keys: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_job_config(_write(tmp_path, f"name: j\nsearchspace: space.yaml\n{keys}\n"))
    assert str(err.value).startswith(str(tmp_path / expected)) or str(err.value).startswith(expected)
    assert "\n" not in str(err.value)


def test_cross_validation_is_off_by_default_and_typed_when_given(tmp_path: Path) -> None:
    job, _ = load_job_config(_write(tmp_path, "name: j\nsearchspace: space.yaml\n"))
    assert job.cross_validation is None
    job, _ = load_job_config(_write(tmp_path, "name: j\nsearchspace: space.yaml\ncross_validation: {folds: 3}\n"))
    assert (job.cross_validation.folds, job.cross_validation.top_k) == (3, 3)
