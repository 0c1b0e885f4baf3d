"""run_trial(config, reporter, metric, mode): the one training function, called by ``--debug`` and by every
Tune trial.

Each epoch it trains, scores the validation split, writes a checkpoint (model + state) and hands both
to the reporter; the reporter decides what to do with them (print and keep the best file, or
``tune.report``). A reporter that has a checkpoint to restore makes the trial resume from it. One rule
picks a trial's best epoch everywhere (trial_state.improves: by the job's metric and mode, never a NaN):
here, in the reporters, and in what ASHA and TPE are told.
"""

from __future__ import annotations

import math
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import keras
import numpy as np
import tensorflow as tf

from polyp_ray.config import TrialConfig, to_dict
from polyp_ray.data.dataset import PreparedData, prepare_data
from polyp_ray.data.pipeline import train_dataset
from polyp_ray.errors import ConfigError, TrainingDiverged
from polyp_ray.evaluation import evaluate_split, predict_probs, resized_maps, score_maps, truths_of, write_test_outputs
from polyp_ray.experiment import TrialFiles
from polyp_ray.losses import get_loss
from polyp_ray.metrics import METRICS, summarise_counts
from polyp_ray.models import build_model, freezable, set_encoder_trainable
from polyp_ray.models.saving import checkpoint_model, export_archive, load_model, save_checkpoint_model
from polyp_ray.runtime import configure_tensorflow
from polyp_ray.schedules import cosine_adam
from polyp_ray.trial_state import TrialState, improves


class Reporter(Protocol):
    def report(self, metrics: dict[str, Any], checkpoint_dir: Path) -> None: ...

    def restore(self) -> Path | None: ...


@dataclass
class TrialResult:
    history: list[dict[str, Any]]
    best_epoch: int
    best_score: float  # ``metric`` at the best epoch
    n_params: int
    metric: str = "val_dice"
    test: dict[str, Any] | None = None
    model: keras.Model | None = field(default=None, repr=False)


def run_trial(config: TrialConfig, reporter: Reporter, data: PreparedData | None = None,
              metric: str = "val_dice", mode: str = "max") -> TrialResult:
    """Train ``config`` for ``config.epochs`` epochs (or resume), reporting every epoch; the model
    returned (and tested) holds the weights of its best epoch by ``metric`` (``mode``: max or min)."""
    configure_tensorflow(config.precision, config.seed, config.cpu_threads)
    data = data or prepare_data(config.data, config.image_size)
    train = data.splits["train"]
    if config.batch_size > len(train):
        raise ConfigError(f"batch_size: {config.batch_size} is larger than the training split ({len(train)} images)")
    steps = len(train) // config.batch_size
    model, state = _restore_or_build(config, reporter.restore(), steps)
    train_tensors = (tf.convert_to_tensor(train.images), tf.convert_to_tensor(train.masks))
    # A resumed trial starts from its checkpoint's weights as the best it knows; Tune trials do not use
    # these anyway: the search evaluates each trial's best checkpoint afterwards.
    best_weights = model.get_weights() if state.history else None
    for epoch in range(state.epoch + 1, config.epochs + 1):
        if _unfreeze_due(config, epoch):
            unfreeze_encoder(model, config, steps)
        with tempfile.TemporaryDirectory(prefix="polyp_ray_ckpt_") as tmp:
            row = _train_epoch(model, config, data, train_tensors, epoch, steps, Path(tmp))
            state.history.append(row)
            if state.best(metric, mode)[0] == epoch:
                best_weights = model.get_weights()
            state.epoch = epoch
            state.write(Path(tmp))
            reporter.report(row, Path(tmp))
    if best_weights is not None:
        model.set_weights(best_weights)
    best_epoch, best_score = state.best(metric, mode)
    result = TrialResult(state.history, best_epoch, best_score, model.count_params(), metric, model=model)
    if config.evaluate_test:
        result.test = evaluate_test(model, config, data, Path(config.output_dir), "debug", best_epoch)
    return result


def evaluate_test(
    model: keras.Model, config: TrialConfig, data: PreparedData, out_dir: Path, trial_id: str, epoch: int
) -> dict[str, Any]:
    """The final, only look at the test split: test_metrics.json and prediction PNGs in ``out_dir``."""
    body, probs = score_test(model, config, data, trial_id, epoch)
    write_test_outputs(TrialFiles(out_dir), body, data.splits["test"], probs, config.threshold)
    return body


def score_test(model: keras.Model, config: TrialConfig, data: PreparedData, trial_id: str,
               epoch: int) -> tuple[dict[str, Any], np.ndarray]:
    """test_metrics.json's body and the probabilities of the first ``num_predictions`` test images."""
    body, probs = evaluate_split(model, data.splits["test"], config.threshold, config.batch_size)
    body = {"trial_id": trial_id, "checkpoint_epoch": epoch, **body, "n_params": model.count_params(),
            "image_size": config.image_size, "model": config.model}
    return body, probs[: config.num_predictions]


def _train_epoch(model, config: TrialConfig, data: PreparedData, train_tensors, epoch: int, steps: int,
                 checkpoint: Path) -> dict:
    """One epoch of training, then validation while the model is written to ``checkpoint``."""
    # A fresh, epoch-seeded stream: a resumed trial sees exactly the augmentations it would have seen.
    images, masks = train_tensors
    stream = train_dataset(images, masks, config.batch_size, config.aug_strength, config.seed * 100_003 + epoch)
    start = time.perf_counter()
    history = model.fit(stream, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False,
                        callbacks=[keras.callbacks.TerminateOnNaN()])
    train_s = time.perf_counter() - start
    loss = float(history.history["loss"][-1])
    if not math.isfinite(loss):
        raise TrainingDiverged(
            f"epoch {epoch}: training loss became {loss} (model={config.model}, learning_rate={config.learning_rate}, "
            f"precision={config.precision}); stopping this trial instead of reporting it"
        )
    # Validation only reads the weights, so the checkpoint (700 MiB for the notebook's U-Net with Adam's
    # slots) is written meanwhile: mostly memory copies and I/O, it overlaps the forward passes.
    with ThreadPoolExecutor(max_workers=1) as pool:
        saving = pool.submit(_timed_save, model, checkpoint)
        val = _validate(model, config, data)
        checkpoint_s = saving.result()
    return {
        "epoch": epoch,
        "loss": loss,
        **val,
        "epoch_s": time.perf_counter() - start,
        "train_s": train_s,
        "train_images_per_s": steps * config.batch_size / train_s,
        "learning_rate": float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
        "checkpoint_s": checkpoint_s,
    }


def _timed_save(model: keras.Model, checkpoint: Path) -> float:
    started = time.perf_counter()
    save_checkpoint_model(model, checkpoint)
    return round(time.perf_counter() - started, 3)


def _validate(model, config: TrialConfig, data: PreparedData) -> dict[str, float]:
    """Scores against the original-size masks (evaluation.py), the same truth for every trial of a
    search; the loss is the training objective, so it stays at the model's input size. The structure
    metrics (S_alpha, E_phi, F^w_beta, MAE: ~50 ms an image) only where the job ranks trials by one."""
    val = data.splits["val"]
    probs = predict_probs(model, val.images, config.batch_size)
    loss = float(keras.ops.convert_to_numpy(get_loss(config.loss)(val.masks.astype(np.float32), probs)))
    started = time.perf_counter()
    truths = truths_of(val)
    counts, structure = score_maps(resized_maps(probs, truths), truths, config.threshold, config.val_structure)
    scores = {**summarise_counts(counts), **structure.summary()}
    return {"val_loss": loss, **{f"val_{name}": scores[name] for name in METRICS if name in scores},
            "val_scoring_s": round(time.perf_counter() - started, 3)}


def _restore_or_build(config: TrialConfig, checkpoint: Path | None, steps: int) -> tuple[keras.Model, TrialState]:
    if checkpoint is not None and checkpoint_model(checkpoint).exists():
        model = load_model(checkpoint_model(checkpoint), compile=True)
        state = TrialState.read(checkpoint)
        if state.config.get("learning_rate", config.learning_rate) != config.learning_rate:
            _recompile_at_reached_step(model, config, steps)  # PBT cloned a checkpoint under a mutated rate
            state.config = to_dict(config)
        return model, state
    model = build_model(config.model, config.image_size, config.base_width, config.encoder_weights,
                        encoder=config.encoder)
    if config.freeze_encoder_epochs > 0 and freezable(config.model, config.encoder):
        set_encoder_trainable(model, False)
    _compile(model, config, steps)
    return model, TrialState(config=to_dict(config))


def _compile(model: keras.Model, config: TrialConfig, steps: int, offset: int = 0) -> None:
    """Adam with cosine decay over the whole run, as the notebook (which decayed per epoch)."""
    model.compile(optimizer=cosine_adam(config.learning_rate, config.epochs * steps, offset),
                  loss=get_loss(config.loss))
    # Adam's slots made now, not by the first traced train step: Keras (TF backend, no distribution
    # strategy) defers them to that trace, and a tf.function that creates variables is traced a second
    # time: a trial's first epoch 1.9-2.2x shorter, 4-10 s at the search sizes (bench/bench_first_epoch.py).
    model.optimizer.build(model.trainable_variables)


def unfreeze_encoder(model: keras.Model, config: TrialConfig, steps: int) -> None:
    """Let the pretrained encoder train from here on: a fresh Adam (its moments now cover the encoder,
    and its bias correction starts again) on the learning-rate schedule at the step the run reached."""
    set_encoder_trainable(model, True)
    _recompile_at_reached_step(model, config, steps)


def _recompile_at_reached_step(model: keras.Model, config: TrialConfig, steps: int) -> None:
    """A fresh Adam at ``config.learning_rate``'s cosine schedule, from the step the run reached."""
    optimizer = model.optimizer
    # The schedule as Keras serialises it (get_config, public): a ShiftedCosineDecay's config holds its offset.
    schedule = optimizer.get_config()["learning_rate"]
    earlier = int(schedule.get("config", {}).get("offset", 0)) if isinstance(schedule, dict) else 0
    offset = int(keras.ops.convert_to_numpy(optimizer.iterations)) + earlier
    _compile(model, config, steps, offset)


def _unfreeze_due(config: TrialConfig, epoch: int) -> bool:
    return (
        config.freeze_encoder_epochs > 0
        and freezable(config.model, config.encoder)
        and epoch == config.freeze_encoder_epochs + 1
    )


class DebugReporter:
    """Prints each epoch and keeps the best checkpoint (by the job's metric) in the output folder."""

    def __init__(self, output_dir: Path, metric: str = "val_dice", mode: str = "max") -> None:
        self.output_dir = output_dir
        self.metric = metric
        self.mode = mode
        self.best: float | None = None  # the folder is made at the first epoch: a run that fails earlier leaves none

    def restore(self) -> Path | None:
        return None

    def report(self, metrics: dict[str, Any], checkpoint_dir: Path) -> None:
        print(
            f"epoch {metrics['epoch']:>3}  loss {metrics['loss']:.4f}  val_loss {metrics['val_loss']:.4f}  "
            f"val_dice {metrics['val_dice']:.4f}  val_iou {metrics['val_iou']:.4f}  "
            f"val_miou_2class {metrics['val_miou_2class']:.4f}  {metrics['epoch_s']:.1f} s  "
            f"({metrics['train_images_per_s']:.1f} img/s)",
            flush=True,
        )
        value = float(metrics[self.metric])
        if improves(value, self.best, self.mode):
            self.best = value
            self.output_dir.mkdir(parents=True, exist_ok=True)
            export_archive(checkpoint_dir, TrialFiles(self.output_dir).best_model)
