"""A trial's first epoch: what making Adam's slots before the first traced step saves, side by side.

Keras (TF backend, no distribution strategy) defers an optimizer's variables to the first traced train
step, and TensorFlow traces a function that creates variables a second time. polyp_ray.trial builds the
optimizer right after compiling instead. Each measurement is ``polyp_ray.trial.run_trial`` in its own
fresh process (2 epochs on 48 synthetic pairs, 70% train), after an idle wait, with the cores other
processes used beside it:

  * ours: run_trial as shipped;
  * deferred: the same with the build removed (polyp_ray before this change), patched into the child.

The figures are run_trial's own epoch 1 and epoch 2 ``epoch_s`` (fit, validation, checkpoint). Epoch 2
is the same in both: the saving is tracing, paid once per trial (and again per resume and unfreeze).

    python bench/bench_first_epoch.py                   # 4 configurations x 2 variants x 2 repeats, ~3 min
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import emit, machine_line, run_child  # noqa: E402

CONFIGS = [("unet", "conv", 32, 4), ("unet", "conv", 64, 8), ("encoder_decoder", "conv", 64, 8),
           ("unet", "mobilenetv2", 64, 8)]
VARIANTS = ("ours", "deferred")


def child(variant: str, model: str, encoder: str, size: int, base: int) -> None:
    from polyp_ray import trial
    from polyp_ray.config import DataConfig, TrialConfig
    from polyp_ray.losses import get_loss
    from polyp_ray.schedules import cosine_adam
    from polyp_ray.tf_quiet import start_tensorflow

    start_tensorflow(False)
    if variant == "deferred":
        def deferred(keras_model, config, steps, offset=0):
            keras_model.compile(optimizer=cosine_adam(config.learning_rate, config.epochs * steps, offset),
                                loss=get_loss(config.loss))
        trial._compile = deferred  # type: ignore[assignment]

    class Silent:
        def restore(self):
            return None

        def report(self, metrics, checkpoint_dir):
            pass

    with tempfile.TemporaryDirectory() as out:
        data = DataConfig(path="synthetic", synthetic_count=48)
        config = TrialConfig(model=model, encoder=encoder, image_size=size, base_width=base, batch_size=8,
                             epochs=2, evaluate_test=False, encoder_weights="none", data=data, output_dir=out)
        result = trial.run_trial(config, Silent())
    emit({"variant": variant, "epoch1_s": result.history[0]["epoch_s"], "epoch2_s": result.history[1]["epoch_s"]})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--wait-idle", type=float, default=60)
    ap.add_argument("--child", nargs=5, metavar=("VARIANT", "MODEL", "ENCODER", "SIZE", "BASE"))
    args = ap.parse_args()
    if args.child:
        variant, model, encoder, size, base = args.child
        child(variant, model, encoder, int(size), int(base))
        return 0
    print(machine_line(), flush=True)
    print("| model | encoder | px | base | epoch 1, deferred (s) | epoch 1, ours (s) | ratio | epoch 2, ours (s) "
          "| others' cores (max) |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |", flush=True)
    for model, encoder, size, base in CONFIGS:
        runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
        for _ in range(args.repeats):
            for variant in VARIANTS:  # interleaved: a drift in the host's speed hits both alike
                res = run_child([sys.executable, __file__, "--child", variant, model, encoder, str(size), str(base)],
                                timeout=600, wait_idle_s=args.wait_idle, label=f"{variant} {model} {size}")
                if res:
                    runs[variant].append(res)
        if not all(runs.values()):
            print(f"| {model} | {encoder} | {size} | {base} | failed | | | | |", flush=True)
            continue
        first = {v: statistics.median(r["epoch1_s"] for r in runs[v]) for v in VARIANTS}
        later = statistics.median(r["epoch2_s"] for r in runs["ours"])
        others = max(r["other_processes_cores"] for v in VARIANTS for r in runs[v])
        print(f"| {model} | {encoder} | {size} | {base} | {first['deferred']:.2f} | {first['ours']:.2f} | "
              f"{first['deferred'] / first['ours']:.2f}x | {later:.2f} | {others:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
