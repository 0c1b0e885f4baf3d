"""One measurement of bench/device/gpu_check.py, in its own process: ``python _worker.py '<json task>'``.

Its own process because the Keras dtype policy and JAX's memory statistics are process-wide: a fresh
process gives each configuration its own peak memory. It prints one JSON line (the last line of its
output) that the parent collects. No TensorFlow and no Ray: the task's record says so from sys.modules.
"""

from __future__ import annotations

import fcntl
import json
import os
import statistics
import sys
import time
from pathlib import Path


def main(task: dict) -> dict:
    if os.environ["KERAS_BACKEND"] != "jax":
        raise SystemExit(f"error: KERAS_BACKEND={os.environ['KERAS_BACKEND']}: the GPU check measures on jax")
    keys = ("encoder", "decoder", "size", "precision", "batch", "base_width", "rank", "share")
    record = {"kind": task["kind"], **{k: task[k] for k in keys if k in task}}
    if task["kind"] == "peak":
        record.update(matmul_peak(task["n"], task["repeats"]))
    else:
        record.update(train(task))
    import jax

    record["device"] = jax.devices()[0].device_kind
    record["jax"] = jax.__version__
    record["tensorflow_loaded"] = any(m == "tensorflow" or m.startswith("tensorflow.") for m in sys.modules)
    record["ray_loaded"] = any(m == "ray" or m.startswith("ray.") for m in sys.modules)
    return record


def matmul_peak(n: int, repeats: int) -> dict:
    """The bf16 matrix-product rate this device reaches, the ceiling the models are held against."""
    import jax
    import jax.numpy as jnp

    # Random operands: zeros ran 13% faster on an H200 (device/METHOD.md).
    ka, kb = jax.random.split(jax.random.PRNGKey(0))
    a = jax.random.normal(ka, (n, n), jnp.bfloat16)
    b = jax.random.normal(kb, (n, n), jnp.bfloat16)
    matmul = jax.jit(jnp.matmul)
    for _ in range(3):
        matmul(a, b).block_until_ready()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, b).block_until_ready()
        times.append(time.perf_counter() - start)
    return {"n": n, "bf16_tflops": 2 * n**3 / statistics.median(times) / 1e12}


def train_flops_per_image(model) -> float:
    """Analytic multiply-add FLOPs of one training step per image: 3x the forward pass of every conv and
    dense layer (the backward pass computes the input and the weight gradients, each the forward's size).
    Element-wise work (BatchNorm, ReLU, the loss) is left out: it does not run on the matrix units."""
    import keras

    forward = 0
    stack = list(model.layers)
    while stack:
        layer = stack.pop()
        if isinstance(layer, keras.Model):
            stack.extend(layer.layers)
            continue
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            continue
        if isinstance(layer, keras.layers.Conv2DTranspose):  # kernel (kh, kw, out, in), applied per input pixel
            _, h, w, _ = layer.input.shape
            forward += 2 * h * w * int(_prod(kernel.shape))
        elif isinstance(layer, keras.layers.DepthwiseConv2D | keras.layers.Conv2D | keras.layers.Dense):
            out_pixels = _prod(layer.output.shape[1:-1])  # Dense on a flat vector: 1
            forward += 2 * out_pixels * int(_prod(kernel.shape)) // getattr(layer, "groups", 1)
    return 3.0 * forward


def _prod(values) -> int:
    result = 1
    for v in values:
        result *= int(v)
    return result


def train(task: dict) -> dict:
    import jax
    import keras
    import numpy as np

    from polyp_ray.losses import bce_dice_loss
    from polyp_ray.models import build_model

    # Not keras.utils.set_random_seed: it imports TensorFlow wherever TensorFlow is installed.
    keras.config.set_dtype_policy(task["precision"])
    started = time.perf_counter()
    model = build_model(task["decoder"], task["size"], task["base_width"], encoder=task["encoder"])
    optimizer = keras.optimizers.Adam(1e-3)
    if task["precision"] == "mixed_float16":  # what model.compile does for float16: scale the loss
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    optimizer.build(model.trainable_variables)

    def loss_fn(trainable, non_trainable, x, y):
        pred, non_trainable = model.stateless_call(trainable, non_trainable, x, training=True)
        loss = bce_dice_loss(y, pred)
        return optimizer.scale_loss(loss), (loss, non_trainable)

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    @jax.jit
    def step(state, x, y):
        trainable, non_trainable, opt_vars = state
        (_, (loss, non_trainable)), grads = grad_fn(trainable, non_trainable, x, y)
        trainable, opt_vars = optimizer.stateless_apply(opt_vars, grads, trainable)
        return (trainable, non_trainable, opt_vars), loss

    rng = np.random.default_rng(0)
    batch, size = task["batch"], task["size"]
    x = jax.device_put(rng.random((batch, size, size, 3), np.float32))
    y = jax.device_put((rng.random((batch, size, size, 1)) > 0.7).astype(np.float32))
    state = ([v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables],
             [v.value for v in optimizer.variables])
    state, loss = step(state, x, y)  # compiles (and autotunes on a GPU)
    jax.block_until_ready(loss)
    compile_s = time.perf_counter() - started
    state, loss = step(state, x, y)
    jax.block_until_ready(loss)

    with _gpu_turn(task.get("lock")):
        if task.get("share"):
            rates = _shared_windows(task, lambda s: step(s, x, y), state)
        else:
            rates = _windows(lambda s: step(s, x, y), state, task["steps"], task["windows"])
    record = {
        "params": model.count_params(), "compile_s": compile_s,
        "train_gflop_per_image": train_flops_per_image(model) / 1e9,
        "images_per_s": statistics.median(rates["solo"]) * batch,
        "loss_finite": bool(np.isfinite(float(loss))),
        "peak_mib": _peak_mib(),
    }
    if "pair" in rates:
        record["pair_images_per_s"] = statistics.median(rates["pair"]) * batch
    return record


def _windows(run_step, state, steps: int, windows: int) -> dict:
    """Steps per second over ``windows`` windows of ``steps`` steps (their median is reported: a window
    the machine disturbed does not move it)."""
    rates = []
    for _ in range(windows):
        start = time.perf_counter()
        for _ in range(steps):
            state, loss = run_step(state)
        loss.block_until_ready()
        rates.append(steps / (time.perf_counter() - start))
    return {"solo": rates}


def _shared_windows(task: dict, run_step, state) -> dict:
    """The fractional-GPU proxy: both processes of the pair train for the same ``seconds`` at once (they
    start together at a file barrier); then process 0 trains alone for as long, after process 1 has
    left, so 'pair' and 'solo' come from the same compiled step on the same memory share."""
    folder, me, seconds = Path(task["share"]), task["rank"], task["seconds"]
    (folder / f"ready-{me}").touch()
    _wait_for(folder, ["ready-0", "ready-1"])
    rates = {"pair": [_timed(run_step, state, seconds)]}
    (folder / f"done-{me}").touch()
    if me == 0:
        _wait_for(folder, ["done-1"])
        rates["solo"] = [_timed(run_step, state, seconds)]
    else:
        rates["solo"] = rates["pair"]  # the parent reads only process 0's solo figure
    return rates


def _timed(run_step, state, seconds: float) -> float:
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(4):  # a few launches queued between host checks of the clock
            state, loss = run_step(state)
        loss.block_until_ready()
        steps += 4
    return steps / (time.perf_counter() - start)


def _wait_for(folder: Path, names: list[str], timeout_s: float = 600.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not all((folder / n).exists() for n in names):
        if time.monotonic() > deadline:
            raise SystemExit(f"error: {folder}: the other process never reached {names}")
        time.sleep(0.005)


class _gpu_turn:
    """Holds a file lock while timing, so that only one process of the pool trains on the GPU at a time
    (the others may still be compiling)."""

    def __init__(self, path: str | None):
        self.path, self.handle = path, None

    def __enter__(self):
        if self.path:
            self.handle = open(self.path, "a")  # noqa: SIM115  closed in __exit__
            fcntl.flock(self.handle, fcntl.LOCK_EX)

    def __exit__(self, *exc):
        if self.handle:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()


def _peak_mib() -> float | None:
    import jax

    stats = jax.devices()[0].memory_stats()  # None on the CPU
    return stats["peak_bytes_in_use"] / 2**20 if stats and "peak_bytes_in_use" in stats else None


if __name__ == "__main__":
    # Set only when run as the worker: the suite imports this module for its FLOP count, and a backend
    # set there would leak into every training subprocess the suite starts afterwards.
    os.environ.setdefault("KERAS_BACKEND", "jax")
    print(json.dumps(main(json.loads(sys.argv[1]))), flush=True)
