"""Replays of one search on the surrogate (search_surrogate.py), in virtual time.

``replay_tune`` drives a strategy through the project's own path: ``new_tuner`` (OptunaSearch with the
job's sampler under the budget guard and the ConcurrencyLimiter, the job's Tune scheduler), with a
trainable that asks the surrogate instead of training. Its epochs take no time; each reports the
surrogate's seconds, and a Stopper ends the search once the trials' virtual seconds fill the budget
(``budget_s`` on ``max_concurrent`` slots), or the job's ``num_samples`` are spent. ``replay_optuna`` and
``replay_kerastuner`` are the peers on the same surrogate: Optuna's own TPE with its HyperbandPruner, and
KerasTuner's Hyperband oracle, each run serially on the same total compute.

Each replay returns its trace: one (epochs spent, virtual seconds spent / slots, true Dice) per reported
epoch, in report order; the true Dice is the surrogate's noise-free score of that trial at that epoch.
``run_pool`` spreads many replays over worker processes; ``quiet_tune`` turns off Tune's per-result work.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from bench.search_surrogate import Surrogate

Trace = list[tuple[int, float, float]]


def _rng(config: dict[str, Any], seed: int) -> np.random.Generator:
    key = json.dumps({k: config[k] for k in sorted(config)}, default=str)
    return np.random.default_rng([seed, zlib.crc32(key.encode())])


def quiet_tune() -> None:
    """Tune's per-result work that a replay has no use for, off; call before Ray starts (its workers
    inherit the environment). Each real epoch takes seconds, so this costs a real search nothing, while
    a replayed epoch takes none and these were most of a replay's time."""
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"  # the JSON/CSV/TensorBoard files of every result
    os.environ["TUNE_GLOBAL_CHECKPOINT_S"] = "1e9"  # the experiment snapshot: once, at the end


def replay_trainable(config: dict[str, Any], surrogate: Surrogate, seed: int, checkpoints: bool) -> None:
    from ray import tune

    dice, true, secs = surrogate.trial(config, _rng(config, seed))
    start, best = 0, -1.0
    restored = tune.get_checkpoint()
    if restored is not None:  # a PBT clone: the donor's epoch and best, then this config's curve
        with restored.as_directory() as folder:
            state = json.loads((Path(folder) / "state.json").read_text())
        start, best = int(state["epoch"]), float(state["best"])
    for epoch in range(start + 1, surrogate.epochs + 1):
        best = max(best, float(dice[epoch - 1]))
        row = {"epoch": epoch, "val_dice": float(dice[epoch - 1]), "best_val_dice": best,
               "epoch_s": float(secs[epoch - 1]), "true_dice": float(true[epoch - 1])}
        if checkpoints:
            with tempfile.TemporaryDirectory() as folder:
                (Path(folder) / "state.json").write_text(json.dumps({"epoch": epoch, "best": best}))
                tune.report(row, checkpoint=tune.Checkpoint.from_directory(folder))
        else:
            tune.report(row)


def _tracer(budget_s: float, slots: int):
    from ray.tune import Callback, Stopper

    class Tracer(Callback, Stopper):
        """Records the trace and stops everything once the virtual seconds fill the budget."""

        def __init__(self) -> None:
            self.trace: Trace = []
            self.epochs, self.seconds = 0, 0.0

        def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
            self.epochs += 1
            self.seconds += float(result["epoch_s"])
            self.trace.append((self.epochs, self.seconds / slots, float(result["true_dice"])))

        def __call__(self, trial_id: str, result: dict) -> bool:
            return False

        def stop_all(self) -> bool:
            return self.seconds / slots >= budget_s

    return Tracer()


def replay_tune(job: Any, space: Any, surrogate: Surrogate, seed: int, budget_s: float, work: Path) -> Trace:
    """One search of ``job`` (its scheduler, sampler, num_samples, max_concurrent) on the surrogate."""
    from ray import tune

    from polyp_ray.storage import locate
    from polyp_ray.tuning.tuner import new_tuner

    name = f"{job.scheduler}-{job.sampler}-{seed}"
    work.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="replay-", dir=work))  # a fresh experiment (and study) each time
    experiment = locate(str(folder), job.name, name, False, folder / "cache")
    trainable = tune.with_parameters(replay_trainable, surrogate=surrogate, seed=seed,
                                     checkpoints=job.scheduler == "pbt")
    tuner = new_tuner(job, space, tune.with_resources(trainable, {"cpu": 0.01}), experiment)
    tracer = _tracer(budget_s, job.max_concurrent)
    # The bench's own settings over new_tuner's: no process per trial (nothing to isolate), no logs.
    tuner._local_tuner._tune_config.reuse_actors = True  # type: ignore[union-attr]
    run = tuner._local_tuner._run_config  # type: ignore[union-attr]
    run.callbacks, run.stop, run.verbose, run.log_to_file = [tracer], tracer, 0, False
    run.checkpoint_config = tune.CheckpointConfig(num_to_keep=None if job.scheduler == "pbt" else 1)
    tuner.fit()
    return tracer.trace


def replay_optuna(points: Any, surrogate: Surrogate, seed: int, budget_s: float, slots: int,
                  num_samples: int, reduction_factor: int = 3) -> Trace:
    """Optuna's own TPE with its HyperbandPruner, serially, on ``budget_s * slots`` virtual seconds."""
    import optuna

    trace: Trace = []
    spent = [0, 0.0]

    def objective(trial: optuna.Trial) -> float:
        config = points(trial)
        dice, true, secs = surrogate.trial(config, _rng(config, seed))
        best = -1.0
        for epoch in range(1, surrogate.epochs + 1):
            spent[0] += 1
            spent[1] += float(secs[epoch - 1])
            trace.append((spent[0], spent[1] / slots, float(true[epoch - 1])))
            best = max(best, float(dice[epoch - 1]))
            trial.report(best, epoch)
            if spent[1] / slots >= budget_s:
                trial.study.stop()
                break
            if trial.should_prune():
                raise optuna.TrialPruned()
        return best

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=optuna.pruners.HyperbandPruner(min_resource=1, max_resource=surrogate.epochs,
                                                                      reduction_factor=reduction_factor))
    study.optimize(objective, n_trials=num_samples)
    return trace


def replay_kerastuner(space_hp: Any, surrogate: Surrogate, seed: int, budget_s: float, slots: int,
                      work: Path, num_samples: int, factor: int = 3) -> Trace:
    """KerasTuner's Hyperband oracle (its brackets, its random sampling), serially, a trial resuming the
    curve where the trial it continues stopped (KerasTuner reloads that model)."""
    import keras_tuner as kt

    hp = kt.HyperParameters()
    space_hp(hp)
    oracle = kt.oracles.HyperbandOracle(objective=kt.Objective("val_dice", "max"), max_epochs=surrogate.epochs,
                                        factor=factor, hyperparameters=hp, seed=seed,
                                        hyperband_iterations=1000)  # until the budget ends, as the others
    work.mkdir(parents=True, exist_ok=True)
    oracle._set_project_dir(tempfile.mkdtemp(prefix="kt-", dir=work), "kt")
    trace: Trace = []
    epochs, seconds = 0, 0.0
    for _ in range(num_samples):  # the trial count bounds a budget of epochs (the kvasir shape)
        if seconds / slots >= budget_s:
            break
        trial = oracle.create_trial("replay")
        if trial.status != "RUNNING":
            break
        values = dict(trial.hyperparameters.values)
        config = {k: v for k, v in values.items() if not k.startswith("tuner/")}
        dice, true, secs = surrogate.trial(config, _rng(config, seed))
        first, last = int(values.get("tuner/initial_epoch", 0)), int(values.get("tuner/epochs", surrogate.epochs))
        for epoch in range(first + 1, last + 1):
            epochs += 1
            seconds += float(secs[epoch - 1])
            trace.append((epochs, seconds / slots, float(true[epoch - 1])))
            oracle.update_trial(trial.trial_id, {"val_dice": float(dice[epoch - 1])}, step=epoch)
        oracle.end_trial(trial)
    return trace


def run_pool(tasks: list[dict], jobs: int, work: Path, results: Path, script: Path, restarts: int = 2) -> None:
    """``tasks`` over ``jobs`` processes of ``script --worker`` (bench_search.py), each taking the next task
    when it is done with one; each result is appended to ``results`` as it comes. A worker that dies (a
    local Ray can time out at start on a busy machine) gives its task back and is started again, up to
    ``restarts`` times per slot; tasks still queued when every slot has given up raise RuntimeError."""
    pending: queue.Queue = queue.Queue()
    for task in tasks:
        pending.put(task)
    lock = threading.Lock()

    def serve(index: int, log: Any) -> bool:
        """One worker process until the queue is empty (True) or it dies (False, its task given back)."""
        child = subprocess.Popen([sys.executable, str(script), "--worker", "--work", str(work)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1)
        try:
            while True:
                try:
                    task = pending.get_nowait()
                except queue.Empty:
                    return True
                child.stdin.write(json.dumps(task) + "\n")
                child.stdin.flush()
                for out in child.stdout:
                    if out.startswith("@@"):
                        with lock, results.open("a") as f:
                            f.write(out[2:])
                        done = json.loads(out[2:])
                        print(f"  {done['budget']} {done['label']} seed {done['seed']}: {done['wall_s']:.1f} s, "
                              f"{len(done['trace'])} epochs", flush=True)
                        break
                    log.write(out)
                else:
                    pending.put(task)
                    return False
        except BrokenPipeError:  # it died before reading the task
            pending.put(task)
            return False
        finally:
            with contextlib.suppress(BrokenPipeError):  # the line a dead worker never read is still buffered
                child.stdin.close()
            child.wait()

    def feed(index: int) -> None:
        with (work / f"worker-{index}.log").open("a") as log:
            for attempt in range(restarts + 1):
                if serve(index, log):
                    return
                print(f"  worker {index} died (attempt {attempt + 1}): see {work}/worker-{index}.log", flush=True)

    threads = [threading.Thread(target=feed, args=(i,)) for i in range(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if not pending.empty():  # every slot spent its restarts: say so rather than report a short run as done
        raise RuntimeError(f"{pending.qsize()} of {len(tasks)} replays not done: every worker died {restarts + 1} "
                           f"times; see {work}/worker-*.log")
