"""run_trial end to end on tiny synthetic data: reports, checkpoints, resume, test evaluation, NaN stop."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from polyp_ray.config import DataConfig, TrialConfig
from polyp_ray.errors import ConfigError, TrainingDiverged
from polyp_ray.models import build_model, set_encoder_trainable
from polyp_ray.models.saving import checkpoint_model, load_model
from polyp_ray.trial import _compile, run_trial, unfreeze_encoder
from polyp_ray.trial_state import STATE_FILE

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


class Crash(Exception):
    pass


class CrashAfterFirstEpoch(Recorder):
    def report(self, metrics: dict, checkpoint_dir: Path) -> None:
        super().report(metrics, checkpoint_dir)
        raise Crash


def test_a_resumed_trial_carries_on_its_learning_rate_and_optimizer_step(tmp_path: Path) -> None:
    for name in ("full", "a", "b"):
        (tmp_path / name).mkdir()
    config = _config(tmp_path, epochs=3, evaluate_test=False)
    full = Recorder(tmp_path / "full")
    ranked = run_trial(config, full, metric="val_loss", mode="min")  # the best epoch by the job's own metric
    losses = [r["val_loss"] for r in full.rows]
    assert ranked.best_epoch == 1 + losses.index(min(losses)) and ranked.best_score == min(losses)
    assert ranked.metric == "val_loss"
    with pytest.raises(Crash):
        run_trial(config, CrashAfterFirstEpoch(tmp_path / "a"))
    resumed = Recorder(tmp_path / "b", restore_from=tmp_path / "a" / "epoch1")
    result = run_trial(config, resumed)
    assert [r["epoch"] for r in resumed.rows] == [2, 3]
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    # The schedule goes on where the interrupted run was, not from the start and not at 0.
    np.testing.assert_allclose([r["learning_rate"] for r in resumed.rows],
                               [r["learning_rate"] for r in full.rows[1:]], rtol=1e-5)
    assert resumed.rows[0]["learning_rate"] > 0.1 * config.learning_rate
    steps = 12 // config.batch_size  # 24 synthetic pairs, half of them train
    assert int(result.model.optimizer.iterations.numpy()) == 3 * steps


def test_nan_loss_stops_the_trial_with_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import polyp_ray.trial as trial_module

    monkeypatch.setattr(trial_module, "get_loss", lambda name: lambda y_true, y_pred: y_pred[0, 0, 0, 0] * np.nan)
    with pytest.raises(TrainingDiverged, match="epoch 1: training loss became nan"):
        run_trial(_config(tmp_path, epochs=1), Recorder(tmp_path))


def test_batch_larger_than_training_split_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="batch_size: 64 is larger than the training split"):
        run_trial(_config(tmp_path, batch_size=64), Recorder(tmp_path))


def test_a_frozen_encoder_does_not_move_until_it_is_unfrozen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import polyp_ray.trial as trial_module

    initial: list[np.ndarray] = []

    def spy(*args, **kwargs):
        model = build_model(*args, **kwargs)
        initial.extend(w.copy() for w in model.get_layer("encoder").get_weights())
        return model

    monkeypatch.setattr(trial_module, "build_model", spy)
    result = run_trial(_config(tmp_path, model="vgg16_unet", freeze_encoder_epochs=1, evaluate_test=False),
                       Recorder(tmp_path))
    assert result.model is not None and result.model.get_layer("encoder").trainable
    after_frozen = load_model(checkpoint_model(tmp_path / "epoch1")).get_layer("encoder").get_weights()
    after_unfrozen = result.model.get_layer("encoder").get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(initial, after_frozen, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(initial, after_unfrozen, strict=True))


def test_the_first_update_after_unfreezing_is_no_larger_than_the_learning_rate(tmp_path: Path) -> None:
    config = _config(tmp_path, model="vgg16_unet", freeze_encoder_epochs=1)
    rng = np.random.default_rng(0)
    images = rng.random((8, 32, 32, 3), dtype=np.float32)
    masks = (rng.random((8, 32, 32, 1)) > 0.7).astype(np.float32)
    steps = 1000  # per epoch: Adam's lost bias correction shows after hundreds of steps, not a few
    model = build_model("vgg16_unet", 32, base_width=4)
    set_encoder_trainable(model, False)
    _compile(model, config, steps)
    model.fit(images, masks, batch_size=4, epochs=1, verbose=0)  # the decoder trains while the encoder is frozen
    model.optimizer.iterations.assign(steps)  # ... for a whole epoch
    unfreeze_encoder(model, config, steps)
    encoder = model.get_layer("encoder")
    before = [w.copy() for w in encoder.get_weights()]
    learning_rate = float(model.optimizer.learning_rate)
    assert learning_rate < config.learning_rate  # the schedule carried on past the frozen steps
    model.train_on_batch(images[:4], masks[:4])
    largest = max(float(np.abs(a - b).max()) for a, b in zip(encoder.get_weights(), before, strict=True))
    assert 0 < largest <= learning_rate * 1.001


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_a_trial_trains_under_mixed_precision(tmp_path: Path, precision: str) -> None:
    import keras

    try:
        result = run_trial(_config(tmp_path, precision=precision, epochs=1), Recorder(tmp_path))
        assert result.model is not None
        assert result.model.get_layer("enc1_a_conv").compute_dtype == precision.removeprefix("mixed_")
        assert result.model.get_layer("mask").compute_dtype == "float32"
        assert np.isfinite(result.history[0]["loss"]) and 0 <= result.history[0]["val_dice"] <= 1
        assert result.test is not None and result.test["summary"]["n_images"] == 6
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_a_trial_in_a_reused_process_trains_as_in_a_fresh_one(tmp_path: Path) -> None:
    # Searches reuse a finished trial's process for the next trial (tuning/tuner.py): nothing of the earlier
    # trial (its precision, its seeds' progress, its Keras state) may change what the next one learns.
    first = run_trial(_config(tmp_path / "a", evaluate_test=False), Recorder(tmp_path / "a"))
    run_trial(_config(tmp_path / "b", precision="mixed_float16", seed=5, evaluate_test=False), Recorder(tmp_path / "b"))
    again = run_trial(_config(tmp_path / "c", evaluate_test=False), Recorder(tmp_path / "c"))
    assert again.model is not None and again.model.get_layer("enc1_a_conv").compute_dtype == "float32"
    assert [r["loss"] for r in again.history] == pytest.approx([r["loss"] for r in first.history], rel=1e-5)
    assert [r["val_dice"] for r in again.history] == pytest.approx([r["val_dice"] for r in first.history], abs=1e-5)
