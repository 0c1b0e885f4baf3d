"""One rule scores a trial: its best epoch. TPE learns that number, and the checkpoint tested is that epoch's."""

import json
import math
from pathlib import Path

import optuna
from ray.tune.search.optuna import OptunaSearch

from polyp_ray.searchspace import SearchSpace, load_searchspace
from polyp_ray.tuning.trainable import _history, best_of, running_best, score_key


def test_running_best_follows_the_mode_and_ignores_nan() -> None:
    assert running_best(None, 0.3, "max") == 0.3
    assert running_best(0.8, 0.5, "max") == 0.8
    assert running_best(0.8, 0.5, "min") == 0.5
    assert running_best(0.8, math.nan, "max") == 0.8
    assert best_of([{"val_dice": 0.2}, {"val_dice": 0.9}, {"val_dice": 0.4}], "val_dice", "max") == 0.9


def test_a_restarted_trial_keeps_the_best_of_its_earlier_epochs(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text(json.dumps({"history": [{"val_dice": 0.7}, {"val_dice": 0.4}]}))
    assert best_of(_history(tmp_path), "val_dice", "max") == 0.7


def test_optuna_is_told_the_best_epoch_not_the_last(tmp_path: Path) -> None:
    (tmp_path / "space.yaml").write_text("learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}\n")
    space: SearchSpace = load_searchspace(tmp_path / "space.yaml")
    searcher = OptunaSearch(space.define_by_run, metric=score_key("val_dice"), mode="max",
                            sampler=optuna.samplers.TPESampler(seed=0))
    assert searcher.suggest("t1") is not None
    epochs = [{"val_dice": 0.8}, {"val_dice": 0.5}]  # peaked, then got worse
    last_report = {**epochs[-1], score_key("val_dice"): best_of(epochs, "val_dice", "max")}
    searcher.on_trial_complete("t1", result=last_report)
    finished = [t for t in searcher._ot_study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert [t.value for t in finished] == [0.8]


def test_a_trial_is_the_jobs_typed_settings_under_the_sampled_point() -> None:
    import pytest

    from polyp_ray.config import TrialConfig
    from polyp_ray.errors import ConfigError
    from polyp_ray.tuning.trainable import trial_settings

    base = TrialConfig(epochs=3, base_width=4)
    config = trial_settings(base, {"aug_strength": 1, "model": "encoder_decoder"}, {"cpu": 2.0, "gpu": 0.0})
    assert isinstance(config, TrialConfig) and config.model == "encoder_decoder" and config.epochs == 3
    assert isinstance(config.aug_strength, float)  # an int where a float goes is coerced, then checked:
    with pytest.raises(ConfigError, match="trial params: learning_rate: must be in"):
        trial_settings(base, {"learning_rate": 2}, {"cpu": 1.0})
    assert (config.cpu_threads, config.evaluate_test) == (2, False)
    assert base.model == "unet" and base.cpu_threads == 0  # the job's own settings are left as they were
    with pytest.raises(ConfigError, match=r"trial params: epochs: unknown key"):  # a run setting is never sampled
        trial_settings(base, {"epochs": 9}, {"cpu": 1.0})
    with pytest.raises(ConfigError, match=r"trial params: batch_size: expected int"):
        trial_settings(base, {"batch_size": "8"}, {"cpu": 1.0})
