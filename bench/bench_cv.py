"""Issue 18: does picking the winner by fold mean beat picking it by the single validation split?

    python bench/bench_cv.py [--data DIR] [--budget-s 780] [--epochs 8] [--top-k 6] [--folds 5] [--out DIR]
    python bench/bench_cv.py --experiment OUT/experiments/bench_cv   # re-analyse a finished run
    python bench/bench_cv.py --smoke                                  # synthetic, tiny: the plumbing only

One real ``python -m polyp_ray.search`` on the first 300 Kvasir-SEG pairs (70/15/15, split seed 0,
near-duplicates grouped), the shipped CPU space with its image size fixed at 64 px, the default job's
ASHA (grace 2, factor 2), 2 trials at a time on 1 core each, stopped by ``time_budget_s``; then the
job's ``cross_validation`` retrains the top-k configurations by validation on K grouped folds of
train+val. From the experiment folder it prints:

  * the validation pick and the fold-mean pick, each one's test Dice (the trial's own best checkpoint
    from the search, per image, bootstrap 95% CI) and the paired difference on the same test images;
  * each pick's fold ensemble test Dice (cross_validation.json);
  * over the top-k: Spearman and Kendall correlation of validation and of fold mean with test Dice
    (each trial's own model; the fold ensemble's; the fold models' mean).

One split, one search seed: a single draw, not a distribution. Writes OUT/summary.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import REPO_ROOT, TreeOthersMeter, default_kvasir_dir, machine_line, use_bench_cache  # noqa: E402

NAME = "bench_cv"
TIMINGS = "timings.json"  # the bench's own record beside experiments/, not a file of the experiment
HYPER = ("model", "base_width", "image_size", "batch_size", "aug_strength", "learning_rate", "loss")
# Lines of the search's console that mark its phases (tuning/run.py, cross_validation.py).
SEARCH_DONE, CV_START, CV_DONE = "search finished in", "cross-validation: the top", ("The winner by fold mean",
                                                                                     "No configuration was scored")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=default_kvasir_dir())
    ap.add_argument("--limit", type=int, default=300, help="the first N pairs by stem")
    ap.add_argument("--budget-s", type=float, default=780, help="the search's time_budget_s (not the cv part)")
    ap.add_argument("--epochs", type=int, default=8, help="every trial's and every fold model's epochs")
    ap.add_argument("--top-k", type=int, default=6)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--out", default="/tmp/polyp_ray_bench_cv")
    ap.add_argument("--experiment", help="analyse this finished experiment folder instead of running one")
    ap.add_argument("--smoke", action="store_true", help="synthetic data, tiny budget: checks the plumbing")
    args = ap.parse_args()
    use_bench_cache()
    print(machine_line(), flush=True)
    if args.experiment:
        experiment = Path(args.experiment).resolve()
        timings_file = experiment.parent.parent / TIMINGS
        out = Path(args.out) if args.out != ap.get_default("out") else experiment.parent.parent
    else:
        out = Path(args.out).resolve()
        experiment, timings_file = _run(out, args), out / TIMINGS
    out.mkdir(parents=True, exist_ok=True)
    timings = json.loads(timings_file.read_text()) if timings_file.is_file() else _timings_from_files(experiment)
    summary = analyse(experiment, timings)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"\nwritten: {out / 'summary.json'}")


def _job(out: Path, args: argparse.Namespace) -> Path:
    import yaml

    space = yaml.safe_load((REPO_ROOT / "searchspace" / "default.yaml").read_text())
    space["image_size"] = {"choices": [32 if args.smoke else 64]}  # one size: the ranking is about the rest
    (out / "space.yaml").write_text(yaml.safe_dump(space, sort_keys=False))
    if args.smoke:
        data = {"path": "synthetic", "synthetic_count": 60, "val_fraction": 0.2, "test_fraction": 0.2}
        budget = {"num_samples": 4}
        cv = {"folds": 3, "top_k": 3}
    else:
        data = {"path": args.data, "limit": args.limit, "val_fraction": 0.15, "test_fraction": 0.15, "split_seed": 0}
        budget = {"num_samples": 500, "time_budget_s": args.budget_s}
        cv = {"folds": args.folds, "top_k": args.top_k}
    job = {"name": NAME, "searchspace": "space.yaml", **budget, "grace_period": 1 if args.smoke else 2,
           "reduction_factor": 2, "metric": "val_dice", "mode": "max", "max_concurrent": 2,
           "resources": {"cpu": 1, "gpu": 0}, "storage_path": str(out / "experiments"), "seed": 0,
           "ensemble_k": 1, "tta": False, "cross_validation": cv, "data": data,
           "trial": {"epochs": 2 if args.smoke else args.epochs, "precision": "float32", "num_predictions": 0}}
    path = out / f"{NAME}.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False))
    return path


def _run(out: Path, args: argparse.Namespace) -> Path:
    """The search, its console timestamped into OUT/search.log (the phases' wall times come from it)."""
    experiment = out / "experiments" / NAME
    if experiment.exists():
        sys.exit(f"{experiment} exists: analyse it with --experiment, or delete it to run again")
    out.mkdir(parents=True, exist_ok=True)
    job = _job(out, args)
    cmd = [sys.executable, "-m", "polyp_ray.search", "--job", str(job), "--name", NAME, "--no-report"]
    loads, stop = [os.getloadavg()[0]], threading.Event()

    def sample() -> None:  # the 1-minute load every 30 s: how shared the machine was during the run
        while not stop.wait(30):
            loads.append(os.getloadavg()[0])

    threading.Thread(target=sample, daemon=True).start()
    meter = TreeOthersMeter()
    meter.start()
    marks: dict[str, float] = {}
    t0 = time.perf_counter()
    print(f"search: {' '.join(cmd)}\n  log: {out / 'search.log'}", flush=True)
    with open(out / "search.log", "w", buffering=1) as log:  # line-buffered: the log can be watched
        proc = subprocess.Popen(cmd, cwd=out, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        for line in proc.stdout:
            now = time.perf_counter() - t0
            log.write(f"[{now:7.1f}] {line}")
            for key in (SEARCH_DONE, CV_START, *CV_DONE):
                if line.startswith(key):
                    marks.setdefault(CV_DONE[0] if key in CV_DONE else key, now)
                    if key == SEARCH_DONE:
                        marks["tune_s"] = float(line.split()[3])
        code = proc.wait()
    wall = time.perf_counter() - t0
    stop.set()
    others = meter.stop()
    loads.append(os.getloadavg()[0])
    if code != 0:
        sys.exit(f"search failed (exit {code}); see {out / 'search.log'}")
    timings = {"wall_s": wall, "tune_s": marks.get("tune_s"),
               "test_scoring_s": _gap(marks, SEARCH_DONE, CV_START), "cv_s": _gap(marks, CV_START, CV_DONE[0]),
               "load_1min_before": loads[0], "load_1min_after": loads[-1], "load_1min_samples": loads,
               "other_processes_cores": others, "source": "timestamped console"}
    (out / TIMINGS).write_text(json.dumps(timings, indent=1))
    return experiment


def _gap(marks: dict[str, float], start: str, end: str) -> float | None:
    return marks[end] - marks[start] if start in marks and end in marks else None


def _timings_from_files(experiment: Path) -> dict:
    """No record of the run: the cv part from the files' times (trials.csv is written before the test
    scoring of the winner, cross_validation.json as the cv part ends)."""
    from polyp_ray.experiment import ExperimentLayout

    layout = ExperimentLayout(experiment)
    done = [p.stat().st_mtime for p in (layout.generalisation, layout.trials_table) if p.is_file()]
    cv = layout.cross_validation.stat().st_mtime - done[0] if done and layout.cross_validation.is_file() else None
    return {"cv_s": cv, "source": "file times (about)"}


def analyse(experiment: Path, timings: dict) -> dict:
    import numpy as np
    import pandas as pd
    from scipy.stats import kendalltau, spearmanr

    from polyp_ray.experiment import ExperimentLayout
    from polyp_ray.stats import bootstrap_ci, paired_wilcoxon

    layout = ExperimentLayout(experiment)
    if not layout.cross_validation.is_file():
        sys.exit(f"{layout.cross_validation}: missing (did the search run with cross_validation?)")
    cv = json.loads(layout.cross_validation.read_text())
    table = pd.read_csv(layout.trials_table, dtype={"trial_id": str}).set_index("trial_id")
    entries = [e for e in cv["configs"] if "mean" in e]
    failed = [e["trial_id"] for e in cv["configs"] if "error" in e]
    per_image = {}
    for e in entries:  # the trial's own best checkpoint from the search, scored per test image
        rows = json.loads(layout.trial(e["trial_id"]).test_metrics.read_text())["per_image"]
        per_image[e["trial_id"]] = {r["stem"]: r["dice"] for r in rows}
    val_pick, fold_pick = cv["validation_pick"], cv["winner"]
    finished = table[table["epochs_run"] > 0] if "epochs_run" in table else table
    sizes = "/".join(str(f["held_out"]) for f in cv["fold_sizes"])
    print(f"\nsearch: {len(finished)} trials trained ({len(table)} listed); cross-validation: top {cv['top_k']} "
          f"by validation on {cv['folds']} grouped folds (held-out sizes {sizes})"
          f"{'; failed: ' + ', '.join(failed) if failed else ''}")

    def describe(trial_id: str) -> dict:
        config = layout.trial(trial_id).read_config()
        row = table.loc[trial_id]
        return {"trial_id": trial_id, **{k: getattr(config, k) for k in HYPER},
                "epochs_run": int(row["epochs_run"]), "best_epoch": int(row["best_epoch"])}

    rows = []
    print(f"\n{'trial':<18}{'config':<44}{'ep':>4}{'val':>8}{'fold mean ± sd':>17}{'own test':>10}"
          f"{'fold ens':>10}{'fold avg':>10}")
    for e in entries:
        d = describe(e["trial_id"])
        own = float(np.mean(list(per_image[e["trial_id"]].values())))
        rows.append({**d, "validation": e["validation"], "fold_scores": e["fold_scores"], "fold_mean": e["mean"],
                     "fold_std": e["std"], "own_test": own, "fold_ensemble_test": e["ensemble_test"]["dice"],
                     "fold_models_test": float(np.mean(e["fold_test_dice"]))})
        short = (f"{d['model'][:4]} w{d['base_width']} b{d['batch_size']} aug {d['aug_strength']:.2f} "
                 f"lr {d['learning_rate']:.1e} {d['loss']}")
        mark = "V" if e["trial_id"] == val_pick else " "
        mark += "F" if e["trial_id"] == fold_pick else " "
        print(f"{mark} {e['trial_id']:<16}{short:<44}{d['epochs_run']:>2}/{d['best_epoch']:<2}{e['validation']:>7.4f}"
              f"{e['mean']:>9.4f} ± {e['std']:.4f}{own:>10.4f}{rows[-1]['fold_ensemble_test']:>10.4f}"
              f"{rows[-1]['fold_models_test']:>10.4f}")
    print("V: validation's pick; F: the fold mean's; ep: epochs run / best epoch (the checkpoint tested); own test:"
          " the search's model; fold ens / avg: the K fold models' ensemble / their mean, test Dice")

    picks = {}
    for label, trial_id in (("validation pick", val_pick), ("fold-mean pick", fold_pick)):
        if trial_id is None:
            continue
        ci = bootstrap_ci(list(per_image[trial_id].values()))
        ens = next(e["ensemble_test"] for e in entries if e["trial_id"] == trial_id)
        picks[label] = {**describe(trial_id), "own_test": {"dice": ci.mean, "low": ci.low, "high": ci.high, "n": ci.n},
                        "fold_ensemble_test": ens}
        print(f"\n{label}: {trial_id} ({', '.join(f'{k} {_short(picks[label][k])}' for k in HYPER)})\n"
              f"  own model's test Dice {ci.mean:.4f} [{ci.low:.4f}, {ci.high:.4f}] (n {ci.n}); fold ensemble "
              f"{ens['dice']:.4f} [{ens['dice_low']:.4f}, {ens['dice_high']:.4f}]")
    paired = None
    if val_pick and fold_pick:
        a, b = per_image[fold_pick], per_image[val_pick]
        stems = sorted(a.keys() & b.keys())
        diff = bootstrap_ci([a[s] - b[s] for s in stems])
        test = paired_wilcoxon(a, b)
        paired = {"same_trial": fold_pick == val_pick, "difference": diff.mean, "low": diff.low, "high": diff.high,
                  "n": diff.n, "wilcoxon_p": test.p_value, "reason": test.reason}
        same = "THE SAME trial: the difference is 0 by construction" if fold_pick == val_pick else "differ"
        print(f"\npicks {same}; "
              f"fold pick minus validation pick, own models, same {diff.n} test images: {diff.mean:+.4f} "
              f"[{diff.low:+.4f}, {diff.high:+.4f}], Wilcoxon p "
              f"{'n/a (' + test.reason + ')' if test.p_value is None else f'{test.p_value:.2g}'}")

    correlations = {}
    print(f"\nrank correlation with test Dice over the top {len(rows)} (Spearman rho, Kendall tau; p in brackets):")
    for target, label in (("own_test", "own model"), ("fold_ensemble_test", "fold ensemble"),
                          ("fold_models_test", "fold models' mean")):
        for rule, key in (("validation", "validation"), ("fold mean", "fold_mean")):
            x, y = [r[key] for r in rows], [r[target] for r in rows]
            with warnings.catch_warnings():  # constant input or n < 3: NaN, said below
                warnings.simplefilter("ignore")
                rho, tau = spearmanr(x, y), kendalltau(x, y)
            correlations[f"{rule} vs {label}"] = {"spearman": _num(rho[0]), "spearman_p": _num(rho[1]),
                                                  "kendall": _num(tau[0]), "kendall_p": _num(tau[1]), "n": len(x)}
            print(f"  {rule:<11} vs {label + ' test':<23} rho {rho[0]:+.2f} ({rho[1]:.2f})   "
                  f"tau {tau[0]:+.2f} ({tau[1]:.2f})")

    t = timings
    print(f"\nwall: {_s(t.get('wall_s'))} in all; Tune's search {_s(t.get('tune_s'))}; test scoring "
          f"{_s(t.get('test_scoring_s'))}; cross-validation {_s(t.get('cv_s'))} ({t.get('source')})")
    if "load_1min_samples" in t:
        samples = t["load_1min_samples"]
        print(f"load average (1 min): {t['load_1min_before']:.2f} before, {t['load_1min_after']:.2f} after; "
              f"{min(samples):.2f}-{max(samples):.2f}, median {statistics.median(samples):.2f} over "
              f"{len(samples)} samples; other processes used {t['other_processes_cores']:.2f} cores meanwhile")
    return {"machine": machine_line(), "experiment": str(experiment), "top_k": rows, "picks": picks,
            "changed": cv["changed"], "paired_fold_minus_validation": paired, "correlations": correlations,
            "failed": failed, "timings": timings}


def _num(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def _short(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _s(value: float | None) -> str:
    return "?" if value is None else f"{value:.0f} s ({value / 60:.1f} min)"


if __name__ == "__main__":
    main()
