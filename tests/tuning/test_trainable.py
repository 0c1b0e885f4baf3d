"""One rule scores a trial: its best epoch. TPE learns that number, and the checkpoint tested is that epoch's."""

import math
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from ray.tune.search.optuna import OptunaSearch

from polyp_ray.searchspace import SearchSpace, load_searchspace
from polyp_ray.trial_state import TrialState, running_best
from polyp_ray.tuning.trainable import TuneReporter, score_key


def test_running_best_follows_the_mode_and_ignores_nan() -> None:
    assert running_best(None, 0.3, "max") == 0.3
    assert running_best(0.8, 0.5, "max") == 0.8
    assert running_best(0.8, 0.5, "min") == 0.5
    assert running_best(0.8, math.nan, "max") == 0.8
    state = TrialState(3, [{"epoch": 1, "val_dice": 0.2}, {"epoch": 2, "val_dice": 0.9}, {"epoch": 3, "val_dice": 0.9}])
    assert state.best("val_dice", "max") == (2, 0.9)  # the first of equal epochs


def test_a_state_is_read_under_any_metric(tmp_path: Path) -> None:
    """The best epoch is derived from the epochs run, so an older state.json (which kept val_dice's best
    only) is read right when the job ranks by another metric."""
    (tmp_path / "state.json").write_text('{"epoch": 2, "best_epoch": 1, "best_val_dice": 0.7, "history": '
                                         '[{"epoch": 1, "val_dice": 0.7, "val_loss": 0.5}, '
                                         '{"epoch": 2, "val_dice": 0.4, "val_loss": 0.3}]}')
    state = TrialState.read(tmp_path)
    assert state.best("val_dice", "max") == (1, 0.7) and state.best("val_loss", "min") == (2, 0.3)


@pytest.mark.parametrize(("metric", "mode", "values", "best"), [
    ("val_dice", "max", [0.8, 0.5], 0.8),  # peaked, then got worse
    ("val_loss", "min", [0.3, 0.6], 0.3),
])
def test_optuna_is_told_the_best_epoch_not_the_last(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    metric: str, mode: str, values: list[float],
                                                    best: float) -> None:
    """Through TuneReporter: the report it hands Tune at the trial's end is what TPE learns from."""
    from polyp_ray.tuning import trainable

    reported: list[dict] = []
    monkeypatch.setattr(trainable.tune, "report", lambda metrics, checkpoint=None: reported.append(metrics))
    monkeypatch.setattr(trainable.ray, "get_runtime_context", lambda: SimpleNamespace(get_node_id=lambda: "node"))
    reporter = TuneReporter({"cpu": 1.0, "gpu": 0.0}, metric, mode)
    state = TrialState()
    for epoch, value in enumerate(values, 1):  # as run_trial does: the state first, then the report
        row = {"epoch": epoch, metric: value}
        state.history.append(row)
        state.epoch = epoch
        (tmp_path / str(epoch)).mkdir()
        state.write(tmp_path / str(epoch))
        reporter.report(row, tmp_path / str(epoch))
    assert [r[score_key(metric)] for r in reported] == [values[0], best]

    (tmp_path / "space.yaml").write_text("learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}\n")
    space: SearchSpace = load_searchspace(tmp_path / "space.yaml")
    url = f"sqlite:///{tmp_path / 'study.db'}"
    storage = optuna.storages.RDBStorage(url)
    searcher = OptunaSearch(space.define_by_run, metric=score_key(metric), mode=mode,
                            sampler=optuna.samplers.TPESampler(seed=0), study_name="s", storage=storage)
    assert searcher.suggest("t1") is not None
    searcher.on_trial_complete("t1", result=reported[-1])
    finished = optuna.load_study(study_name="s", storage=url).get_trials(
        states=(optuna.trial.TrialState.COMPLETE,))
    assert [t.value for t in finished] == [best]

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
