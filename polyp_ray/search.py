"""``python -m polyp_ray.search``: the hyperparameter search (Ray Tune + Optuna TPE + ASHA), or one
trial in-process with ``--debug``, without Ray. The CLI only: it parses, checks the job, and hands it
to ``polyp_ray.tuning`` (which starts Ray) or to ``run_trial``.

    python -m polyp_ray.search                          # the embedded default job, local Ray
    python -m polyp_ray.search --job jobs/kvasir.yaml --address auto
    python -m polyp_ray.search --debug --set data.path=../shared/data/Kvasir-SEG --set epochs=3
    python -m polyp_ray.search --job jobs/kvasir.yaml --resume            # finish the latest run
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from importlib import resources
from pathlib import Path

from polyp_ray.config import JobConfig, TrialConfig, load_job, load_job_config, to_dict, trial_config_for
from polyp_ray.errors import ConfigError, help_text, one_line, run_cli
from polyp_ray.experiment import TrialFiles
from polyp_ray.metrics import LITERATURE, METRICS
from polyp_ray.searchspace import SearchSpace, load_searchspace

DEFAULT_JOB = "default.yaml"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return run_cli(lambda: _main(args), interrupted="interrupted; resume with --resume")


def _main(args: argparse.Namespace) -> int:
    job_path = Path(args.job) if args.job else Path(str(resources.files("polyp_ray") / "defaults" / DEFAULT_JOB))
    overrides = [_route_override(item) for item in args.set]
    if args.debug:  # one trial of the job's own settings: no space is sampled, none is needed
        debug_job = load_job(job_path, overrides, debug=True)
        _check_encoder_weights(debug_job, None, job_path)
        return _debug(debug_job, args.verbose)
    job, space_path = load_job_config(job_path, overrides)
    space = load_searchspace(space_path)
    for point in job.points_to_evaluate:
        space.check_point(point, str(job_path))
    _check_encoder_weights(job, space, job_path)
    from polyp_ray.tuning import SearchOptions, run_search  # imports Ray only for a real search
    from polyp_ray.tuning.strategies import check_strategy

    check_strategy(job, space, str(job_path))

    options = SearchOptions(command=command_line(), address=args.address, name=args.name, resume=args.resume,
                            verbose=args.verbose, min_nodes=args.min_nodes)
    experiment = run_search(job, space, space_path, options)
    if not args.no_report:
        _write_report(experiment.local)
        experiment.publish()  # the report beside the results, at a storage URI too
    return 0


def _write_report(experiment: Path) -> None:
    """The report goes into the experiment folder (``ExperimentLayout.report``), where it stays with the results:
    a Ray Job's working directory, and with it ``reports/``, is deleted when the job ends. The copy in
    ``reports/<experiment>.html`` under the current folder is kept for a search run by hand."""
    from polyp_ray.report.build import write_reports

    try:
        written = write_reports(experiment)  # built once (the gallery loads the best model) and copied
    except Exception as err:  # noqa: BLE001 - the results are on disk; a report bug must not hide them
        print(f"warning: the report failed ({one_line(err)}); "
              f"rerun: python -m polyp_ray.report {experiment}", file=sys.stderr)
        return
    for path in written:
        print(f"report: {path}")


def _check_encoder_weights(job: JobConfig, space: SearchSpace | None, job_path: Path) -> None:
    """The pretrained weights of every encoder the space can sample are on this machine (downloaded
    here, once, when absent) before any trial starts: trials never race to download them."""
    from polyp_ray.models.weights import resolve_weights
    from polyp_ray.pretrained import needed_weights

    for encoder, weights in needed_weights(job, space):
        try:
            resolve_weights(encoder, weights)
        except ConfigError as err:
            raise ConfigError(f"{job_path}: trial.{err}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m polyp_ray.search", description=help_text(__doc__),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--job", help="job YAML (default: the embedded synthetic-data job)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a job key (dotted: trial.model=unet, data.path=...); repeatable")
    parser.add_argument("--address", help="attach to a running Ray cluster: auto or HOST:PORT")
    parser.add_argument("--min-nodes", type=int, default=1, metavar="N",
                        help="with --address: wait until N Ray nodes have joined (polyp_ray.slurm passes its job's)")
    parser.add_argument("--name", help="experiment name (default: <job name>-<timestamp>)")
    parser.add_argument("--resume", action="store_true",
                        help="finish an interrupted experiment (--name, or the job's latest)")
    parser.add_argument("--no-report", action="store_true", help="skip the HTML report at the end")
    parser.add_argument("--debug", action="store_true", help="run ONE trial in this process, without Ray")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show every trial's own output (TensorFlow's start-up lines included)")
    return parser


def _route_override(item: str) -> str:
    """Let ``--set model=unet`` mean ``trial.model=unet`` (and ``epochs=3`` mean ``trial.epochs=3``): a bare
    trial field that is not also a job key (``seed`` is the sampler's) is the job's fixed trial setting."""
    key = item.partition("=")[0]
    head = key.split(".")[0]
    job_fields = {f.name for f in dataclasses.fields(JobConfig)} | {"data"}
    if head not in job_fields and head in {f.name for f in dataclasses.fields(TrialConfig)}:
        return f"trial.{item}"
    return item


def _debug(job: JobConfig, verbose: bool = False) -> int:
    from polyp_ray.tf_quiet import start_tensorflow

    start_tensorflow(verbose)  # a search is quiet (trials log to their files); its debug trial is too
    from polyp_ray.trial import DebugReporter, run_trial

    config = trial_config_for(job, {})
    if config.output_dir == TrialConfig.output_dir:  # never overwrite an earlier debug run
        config.output_dir = f"{config.output_dir}-{time.strftime('%Y%m%d-%H%M%S')}"
    out = Path(config.output_dir)  # made at the first epoch's report: a run that fails earlier leaves none
    print(f"debug trial: model={config.model} encoder={config.encoder} base_width={config.base_width} "
          f"image_size={config.image_size} batch_size={config.batch_size} epochs={config.epochs} "
          f"precision={config.precision} data={config.data.path}", flush=True)
    from polyp_ray.data.dataset import check_dataset, prepare_data

    described = check_dataset(config.data)  # checks every pair first
    described.info.check_batch_size(config.batch_size, "trial.batch_size")  # before any decode cache
    described.info.announce()
    result = run_trial(config, DebugReporter(out, job.metric, job.mode),
                       prepare_data(config.data, config.image_size, described), job.metric, job.mode)
    files = TrialFiles(out)
    files.config.write_text(json.dumps(to_dict(config), indent=1))
    files.history.write_text(json.dumps(result.history, indent=1))
    test = result.test["summary"] if result.test else {}
    print(f"best epoch {result.best_epoch}: {result.metric} {result.best_score:.4f}; test per-image dice "
          f"{test.get('dice', float('nan')):.4f}, iou {test.get('iou', float('nan')):.4f}, "
          f"2-class mIoU {test.get('miou_2class', float('nan')):.4f} ({test.get('n_images', 0)} images, "
          "scored at their original resolution)")
    if test.get("s_alpha") is not None:
        print("  the literature's figures: " + ", ".join(f"{METRICS[k].label} {test[k]:.4f}" for k in LITERATURE))
    shown = ", ".join(p.name for p in (files.best_model, files.test_metrics, files.history, files.config))
    print(f"artifacts: {out.resolve()} ({shown}, {files.predictions.name}/)")
    return 0


def command_line() -> str:
    return " ".join(shlex.quote(a) for a in ["python", "-m", "polyp_ray.search", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())

