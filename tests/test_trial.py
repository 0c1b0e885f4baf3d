"""run_trial end to end on tiny synthetic data: reports, checkpoints, resume, test evaluation, NaN stop."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from polyp_ray.config import DataConfig, TrialConfig
from polyp_ray.errors import ConfigError, TrainingDiverged
from polyp_ray.models.saving import checkpoint_model
from polyp_ray.trial import STATE_FILE, run_trial

EPOCH_KEYS = {"epoch", "loss", "val_loss", "val_dice", "val_iou", "val_miou_2class", "epoch_s", "train_images_per_s"}


class Recorder:
    def __init__(self, keep: Path, restore_from: Path | None = None) -> None:
        self.rows: list[dict] = []
        self.keep = keep
        self.restore_from = restore_from

    def restore(self) -> Path | None:
        return self.restore_from

    def report(self, metrics: dict, checkpoint_dir: Path) -> None:
        self.rows.append(metrics)
        shutil.copytree(checkpoint_dir, self.keep / f"epoch{metrics['epoch']}")


def _config(tmp_path: Path, **changes) -> TrialConfig:
    data = DataConfig(synthetic_count=24, val_fraction=0.25, test_fraction=0.25)
    values = dict(model="unet", base_width=4, image_size=32, batch_size=4, epochs=2, output_dir=str(tmp_path / "out"),
                  num_predictions=2, data=data)
    values.update(changes)
    config = TrialConfig(**values)
    config.validate("test")
    return config


def test_reports_every_epoch_with_checkpoints_and_evaluates_test(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path)
    result = run_trial(_config(tmp_path), recorder)
    assert [r["epoch"] for r in recorder.rows] == [1, 2]
    assert all(EPOCH_KEYS <= set(r) for r in recorder.rows)
    assert all(np.isfinite(r["loss"]) and 0 <= r["val_dice"] <= 1 for r in recorder.rows)
    state = json.loads((tmp_path / "epoch2" / STATE_FILE).read_text())
    assert state["epoch"] == 2 and len(state["history"]) == 2
    assert (checkpoint_model(tmp_path / "epoch2") / "model.weights.h5").stat().st_size > 0
    test = json.loads((tmp_path / "out" / "test_metrics.json").read_text())
    assert test["summary"]["n_images"] == len(test["per_image"]) == 6
    assert {"stem", "dice", "iou", "truth_fraction"} <= set(test["per_image"][0])
    assert test["checkpoint_epoch"] == result.best_epoch
    assert len(list((tmp_path / "out" / "predictions").glob("*.png"))) == 2


def test_resumes_from_a_checkpoint_without_retraining_done_epochs(tmp_path: Path) -> None:
    first = Recorder(tmp_path / "a")
    (tmp_path / "a").mkdir()
    run_trial(_config(tmp_path, epochs=1, evaluate_test=False), first)
    resumed = Recorder(tmp_path / "b", restore_from=tmp_path / "a" / "epoch1")
    (tmp_path / "b").mkdir()
    result = run_trial(_config(tmp_path, epochs=3, evaluate_test=False), resumed)
    assert [r["epoch"] for r in resumed.rows] == [2, 3]
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    assert result.history[0]["loss"] == first.rows[0]["loss"]


def test_nan_loss_stops_the_trial_with_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import polyp_ray.trial as trial_module

    monkeypatch.setattr(trial_module, "get_loss", lambda name: lambda y_true, y_pred: y_pred[0, 0, 0, 0] * np.nan)
    with pytest.raises(TrainingDiverged, match="epoch 1: training loss became nan"):
        run_trial(_config(tmp_path, epochs=1), Recorder(tmp_path))


def test_batch_larger_than_training_split_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="batch_size: 64 is larger than the training split"):
        run_trial(_config(tmp_path, batch_size=64), Recorder(tmp_path))


def test_frozen_encoder_unfreezes_after_its_epochs(tmp_path: Path) -> None:
    result = run_trial(_config(tmp_path, model="vgg16_unet", freeze_encoder_epochs=1, evaluate_test=False),
                       Recorder(tmp_path))
    assert result.model is not None and result.model.get_layer("encoder").trainable
    assert len(result.history) == 2
