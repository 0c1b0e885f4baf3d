from pathlib import Path

import optuna
import pytest

from polyp_ray.errors import ConfigError
from polyp_ray.searchspace import load_searchspace

SPACE = """
model: {choices: [unet, vgg16_unet, encoder_decoder]}
base_width: {choices: [4, 8], when: {model: [unet, encoder_decoder]}}
freeze_encoder_epochs: {low: 0, high: 2, when: {model: vgg16_unet}}
image_size: {choices: [64, 96]}
learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}
batch_size: {low: 4, high: 16, step: 4}
loss: {value: bce_dice}
"""


def _space(tmp_path: Path, text: str = SPACE):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return load_searchspace(path)


def test_define_by_run_samples_conditional_parameters(tmp_path: Path) -> None:
    space = _space(tmp_path)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen_models = set()
    for _ in range(30):
        trial = study.ask()
        constants = space.define_by_run(trial)
        params = trial.params
        seen_models.add(params["model"])
        assert constants == {"loss": "bce_dice"}
        assert ("base_width" in params) == (params["model"] != "vgg16_unet")
        assert ("freeze_encoder_epochs" in params) == (params["model"] == "vgg16_unet")
        assert 1e-4 <= params["learning_rate"] <= 1e-2 and params["batch_size"] in (4, 8, 12, 16)
        study.tell(trial, 0.5)
    assert seen_models == {"unet", "vgg16_unet", "encoder_decoder"}
    assert space.possible("image_size", 128) == [64, 96]
    assert space.possible("base_width", 16) == [16, 4, 8]  # conditional: the default applies to vgg16_unet
    assert space.possible("precision", "float32") == ["float32"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("colour: {choices: [red]}\n", "space.yaml: colour: unknown or unsearchable parameter"),
        ("model: {choices: [unet, resnet]}\n", "space.yaml: model: 'resnet': unknown model"),
        ("loss: {choices: [focal]}\n", "space.yaml: loss: 'focal': unknown loss"),
        ("learning_rate: {low: 0.1, high: 0.01}\n", "space.yaml: learning_rate.low: must be below high"),
        ("learning_rate: {low: 0, high: 0.01, log: true}\n", "space.yaml: learning_rate.low: must be > 0"),
        ("learning_rate: {low: 1.0e-4, hihg: 0.01}\n", "space.yaml: learning_rate.hihg: unknown key"),
        ("image_size: {choices: [100]}\n", "space.yaml: image_size: 100: must be a multiple of 32"),
        ("aug_strength: {low: 0.0, high: 2.0}\n", "space.yaml: aug_strength: bound 2.0: must be in [0, 1]"),
        ("base_width: {choices: [4], when: {model: unet}}\n",
         "space.yaml: base_width.when.model: must name a parameter"),
        ("data: {value: x}\n", "space.yaml: data: unknown or unsearchable"),
        ("", "space.yaml: the search space is empty"),
        ("image_size: {choices: [64]}\nmodel: {value: unet}\nimage_size: {choices: [96]}\n",
         "space.yaml: key 'image_size' appears twice: line 1 and line 3"),
    ],
)
def test_bad_spaces_name_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        _space(tmp_path, text)
    assert expected in str(err.value)


def test_points_to_evaluate_are_checked(tmp_path: Path) -> None:
    space = _space(tmp_path)
    space.check_point({"model": "unet", "learning_rate": 1e-3}, "job.yaml")
    with pytest.raises(ConfigError, match="job.yaml: points_to_evaluate: model: 'resnet' not in"):
        space.check_point({"model": "resnet"}, "job.yaml")
    with pytest.raises(ConfigError, match="points_to_evaluate: colour: not a parameter"):
        space.check_point({"colour": 1}, "job.yaml")


def test_shipped_spaces_and_jobs_load() -> None:
    from polyp_ray.config import load_job_config

    repo = Path(__file__).resolve().parents[1]
    for job in sorted((repo / "jobs").glob("*.yaml")):
        loaded, space_path = load_job_config(job)
        space = load_searchspace(space_path)
        for point in loaded.points_to_evaluate:
            space.check_point(point, str(job))
