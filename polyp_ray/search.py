"""``python -m polyp_ray.search``: the hyperparameter search (Ray Tune + Optuna TPE + ASHA), or one
trial in-process with ``--debug``. The only module that starts Ray.

    python -m polyp_ray.search                          # the embedded default job, local Ray
    python -m polyp_ray.search --job jobs/kvasir.yaml --address auto
    python -m polyp_ray.search --debug --set data.path=../shared/data/Kvasir-SEG --set epochs=3
    python -m polyp_ray.search --job jobs/kvasir.yaml --resume            # finish the latest run
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

from polyp_ray.config import JobConfig, TrialConfig, load_job_config, to_dict, trial_from_dict
from polyp_ray.errors import ConfigError, run_cli
from polyp_ray.searchspace import SearchSpace, load_searchspace

DEFAULT_JOB = "default.yaml"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return run_cli(lambda: _main(args), interrupted="interrupted; resume with --resume")


def _main(args: argparse.Namespace) -> int:
    job_path = Path(args.job) if args.job else Path(str(resources.files("polyp_ray") / "defaults" / DEFAULT_JOB))
    overrides = [_route_override(item, args.debug) for item in args.set]
    job, space_path = load_job_config(job_path, overrides)
    space = load_searchspace(space_path)
    for point in job.points_to_evaluate:
        space.check_point(point, str(job_path))
    _check_encoder_weights(job, space if not args.debug else None, job_path)
    if args.debug:
        return _debug(job)
    from polyp_ray.tuning import run_search  # imports Ray only for a real search

    return run_search(job, job_path, space, space_path, args)


def _check_encoder_weights(job: JobConfig, space: SearchSpace | None, job_path: Path) -> None:
    """Pretrained weights a trial will ask for must be on disk before any trial starts."""
    from polyp_ray.models.registry import MODELS
    from polyp_ray.models.weights import resolve_vgg16_weights

    def possible(name: str) -> list:
        default = getattr(job.trial, name)
        return space.possible(name, default) if space else [default]

    if not any(MODELS[m].pretrained_encoder for m in possible("model")):
        return
    for weights in possible("encoder_weights"):
        try:
            resolve_vgg16_weights(weights)
        except ConfigError as err:
            raise ConfigError(f"{job_path}: trial.{err}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m polyp_ray.search", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--job", help="job YAML (default: the embedded synthetic-data job)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a job key (dotted: trial.model=unet, data.path=...); repeatable")
    parser.add_argument("--address", help="attach to a running Ray cluster: auto or HOST:PORT")
    parser.add_argument("--name", help="experiment name (default: <job name>-<timestamp>)")
    parser.add_argument("--resume", action="store_true",
                        help="finish an interrupted experiment (--name, or the job's latest)")
    parser.add_argument("--no-report", action="store_true", help="skip the HTML report at the end")
    parser.add_argument("--debug", action="store_true", help="run ONE trial in this process, without Ray")
    return parser


def _route_override(item: str, debug: bool) -> str:
    """Let ``--set model=unet`` mean ``trial.model=unet`` (and ``epochs`` mean ``max_epochs``)."""
    key, _, value = item.partition("=")
    head = key.split(".")[0]
    job_fields = {f.name for f in dataclasses.fields(JobConfig)} | {"data"}
    if key == "epochs":
        return f"max_epochs={value}"
    if head not in job_fields and head in {f.name for f in dataclasses.fields(TrialConfig)}:
        return f"trial.{item}"
    return item


def trial_config_for(job: JobConfig, params: dict[str, Any], **fixed: Any) -> TrialConfig:
    """The job's fixed trial settings + one sampled point, trained for the job's max_epochs."""
    base = to_dict(job.trial)
    base.update(params)
    base.update(epochs=job.max_epochs, **fixed)
    return trial_from_dict(base, f"job {job.name}")


def _debug(job: JobConfig) -> int:
    from polyp_ray.trial import DebugReporter, run_trial

    config = trial_config_for(job, {})
    if config.output_dir == TrialConfig.output_dir:  # never overwrite an earlier debug run
        config.output_dir = f"{config.output_dir}-{time.strftime('%Y%m%d-%H%M%S')}"
    out = Path(config.output_dir)
    print(f"debug trial: model={config.model} base_width={config.base_width} image_size={config.image_size} "
          f"batch_size={config.batch_size} epochs={config.epochs} precision={config.precision} "
          f"data={config.data.path}", flush=True)
    reporter = DebugReporter(out)
    result = run_trial(config, reporter)
    (out / "trial_config.json").write_text(_json(to_dict(config)))
    (out / "history.json").write_text(_json(result.history))
    test = result.test["summary"] if result.test else {}
    print(f"best epoch {result.best_epoch}: val_dice {result.best_val_dice:.4f}; test per-image dice "
          f"{test.get('dice', float('nan')):.4f}, iou {test.get('iou', float('nan')):.4f}, "
          f"2-class mIoU {test.get('miou_2class', float('nan')):.4f} ({test.get('n_images', 0)} images)")
    print(f"artifacts: {out.resolve()} (best.keras, test_metrics.json, history.json, predictions/)")
    return 0


def _json(body: Any) -> str:
    import json

    return json.dumps(body, indent=1)


def command_line() -> str:
    return " ".join(shlex.quote(a) for a in ["python", "-m", "polyp_ray.search", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["main", "trial_config_for", "SearchSpace", "ConfigError"]
