"""What a search buys: a fixed-budget CPU search against the notebook's recipe on the same split.

    python bench/bench_quality.py [--data DIR] [--external DIR] [--budget-s 3600] [--out DIR]

Both run on Kvasir-SEG (all 1000 pairs, one fixed split: 70/15/15, split seed 0, near-duplicates
grouped) and are scored by the original-resolution protocol:

  * search: ``python -m polyp_ray.search`` with the space below, ASHA, TPE (its start-up sized to the budget,
    no seeded points), 2 trials at a time on 1 core each, stopped by ``time_budget_s``; CVC-ClinicDB is
    its external test set, so the search's own generalisation step scores the winner, the family bests
    and the top-3 ensemble (with flip TTA) on test and on CVC-ClinicDB;
  * notebook recipe: one debug trial at the notebook's settings (U-Net base 64, 128 px, batch 4, 10
    epochs, Adam 1e-3 with cosine decay, BCE+Dice, float32, aug 0.5), then scored on CVC-ClinicDB.

Prints each test Dice with its 95% bootstrap CI, the same on CVC-ClinicDB, and last the paired
differences (same images) with their CIs. Each phase keeps its result in ``--out``; a second run
skips the phases already done (delete the folder to start over).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import REPO_ROOT, TreeOthersMeter, default_kvasir_dir, machine_line, use_bench_cache  # noqa: E402
from polyp_ray.experiment import ExperimentLayout, TrialFiles  # noqa: E402

SPACE = """\
model: {choices: [unet, encoder_decoder]}
base_width: {choices: [8, 16, 24]}
image_size: {choices: [128, 160, 192]}
batch_size: {choices: [4, 8, 16]}
aug_strength: {low: 0.0, high: 1.0}
learning_rate: {low: 3.0e-4, high: 1.0e-2, log: true}
loss: {choices: [bce_dice, dice]}
"""
NOTEBOOK = {"model": "unet", "encoder": "conv", "base_width": 64, "image_size": 128, "batch_size": 4,
            "aug_strength": 0.5, "learning_rate": 1.0e-3, "loss": "bce_dice", "precision": "float32", "epochs": 10}
EXTERNAL = "cvc-clinicdb"


def default_external() -> str:
    return str((REPO_ROOT / ".." / "shared" / "data" / "CVC-ClinicDB").resolve())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=default_kvasir_dir())
    ap.add_argument("--external", default=default_external(), help="CVC-ClinicDB folder (the external set)")
    ap.add_argument("--budget-s", type=float, default=3600, help="the search's time budget")
    ap.add_argument("--epochs", type=int, default=27, help="each trial's epochs (ASHA's max_t)")
    ap.add_argument("--out", default="/tmp/polyp_ray_bench_quality")
    args = ap.parse_args()
    use_bench_cache()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(machine_line(), flush=True)
    data = {"path": args.data, "val_fraction": 0.15, "test_fraction": 0.15, "split_seed": 0,
            "external_tests": {EXTERNAL: args.external}}
    experiment = _search(out, data, args)
    notebook = _notebook(out, data)
    _compare(experiment, notebook, out)


def _run(command: list[str], log: Path) -> float:
    """Run a polyp_ray command, its output to ``log``; return the cores other processes used meanwhile."""
    meter = TreeOthersMeter()
    meter.start()
    started = time.time()
    with open(log, "w") as sink:
        code = subprocess.call(command, cwd=log.parent, stdout=sink, stderr=subprocess.STDOUT)
    others = meter.stop()
    if code != 0:
        sys.exit(f"{' '.join(command)} failed (exit {code}); see {log}")
    print(f"  {time.time() - started:.0f} s; other processes used {others:.2f} cores meanwhile", flush=True)
    return others


def _write_job(folder: Path, name: str, body: dict, space: str) -> Path:
    import yaml

    (folder / "space.yaml").write_text(space)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "searchspace": "space.yaml", **body}, sort_keys=False))
    return path


def _search(out: Path, data: dict, args: argparse.Namespace) -> Path:
    experiment = out / "search" / "experiments" / "quality"
    if ExperimentLayout(experiment).generalisation.exists():
        print(f"search: done earlier ({experiment})", flush=True)
        return experiment
    folder = out / "search"
    folder.mkdir(exist_ok=True)
    job = _write_job(folder, "quality", {
        "num_samples": 500, "time_budget_s": args.budget_s, "grace_period": 3, "reduction_factor": 3,
        "metric": "val_dice", "mode": "max", "max_concurrent": 2, "resources": {"cpu": 1, "gpu": 0},
        "storage_path": "experiments", "seed": 0, "ensemble_k": 3, "tta": True, "data": data,
        "trial": {"epochs": args.epochs, "precision": "float32", "num_predictions": 4}}, SPACE)
    print(f"search: {args.budget_s:.0f} s budget, {args.epochs} epochs max per trial ...", flush=True)
    _run([sys.executable, "-m", "polyp_ray.search", "--job", str(job), "--name", "quality", "--no-report"],
         folder / "search.log")
    return experiment


def _notebook(out: Path, data: dict) -> Path:
    run = out / "notebook" / "run"
    if (run / "external.json").exists():
        print(f"notebook recipe: done earlier ({run})", flush=True)
        return run
    folder = out / "notebook"
    folder.mkdir(exist_ok=True)
    trial = {**NOTEBOOK, "output_dir": str(run), "num_predictions": 4}
    job = _write_job(folder, "notebook", {"data": data, "trial": trial}, "model: {value: unet}\n")
    print("notebook recipe: U-Net base 64, 128 px, batch 4, 10 epochs, float32 ...", flush=True)
    _run([sys.executable, "-m", "polyp_ray.search", "--debug", "--job", str(job)], folder / "notebook.log")
    _score_external(run, data)
    return run


def _score_external(run: Path, data: dict) -> None:
    """The notebook model on the external set, by the same protocol and code as the search's."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from polyp_ray.config import DataConfig
    from polyp_ray.data.external import external_sets, external_split
    from polyp_ray.ensemble import member_probs
    from polyp_ray.evaluation import score_split
    from polyp_ray.models.saving import load_model

    config = DataConfig(**data)
    external = external_sets(config)[EXTERNAL]
    split = external_split(external, NOTEBOOK["image_size"], config)
    model = load_model(TrialFiles(run).best_model)
    body = {tta: score_split(member_probs(model, split.images, tta), split, 0.5) for tta in (False, True)}
    (run / "external.json").write_text(json.dumps({"plain": body[False], "tta": body[True]}))


def _compare(experiment: Path, notebook: Path, out: Path) -> None:
    import pandas as pd

    from polyp_ray.stats import bootstrap_ci, paired_wilcoxon

    layout = ExperimentLayout(experiment)
    gen = json.loads(layout.generalisation.read_text())
    rows = {r["label"]: r for r in gen["rows"]}
    split = json.loads(layout.dataset.read_text())["split"]["test"]
    nb_test = {r["stem"]: r["dice"] for r in json.loads(TrialFiles(notebook).test_metrics.read_text())["per_image"]}
    nb_ext = {r["stem"]: r["dice"] for r in json.loads((notebook / "external.json").read_text())["plain"]["per_image"]}
    ext_stems = list(nb_ext)
    winner_id = rows["winner"]["trial_ids"][0]
    config = json.loads(layout.trial(winner_id).config.read_text())
    table = pd.read_csv(layout.trials_table)
    print(f"\nsearch: {len(table)} trials in the budget; winner {winner_id}: " + ", ".join(
        f"{k}={config[k]}" for k in ("model", "base_width", "image_size", "batch_size", "aug_strength",
                                     "learning_rate", "loss")) + f"; {_found_by(layout, config)}")
    lines = {}
    for label in [r["label"] for r in gen["rows"] if r["kind"] != "family"]:
        lines[label] = (dict(zip(split, rows[label]["per_image_dice"]["test"], strict=True)),
                        dict(zip(ext_stems, rows[label]["per_image_dice"][EXTERNAL], strict=True)))
    lines["notebook recipe"] = (nb_test, nb_ext)
    print(f"\n{'':<28} {'Kvasir-SEG test Dice [95% CI]':<32} {EXTERNAL} Dice [95% CI] (external)")
    for label, (test, ext) in lines.items():
        a, b = bootstrap_ci(list(test.values())), bootstrap_ci(list(ext.values()))
        print(f"{label:<28} {a.mean:.4f} [{a.low:.4f}, {a.high:.4f}] ({a.n})   "
              f"{b.mean:.4f} [{b.low:.4f}, {b.high:.4f}] ({b.n})")
    print("\npaired differences, search minus notebook recipe, on the same images:")
    summary = {}
    for label in ("winner", "winner + flip TTA", *[k for k in lines if "ensemble" in k]):
        for which, index in (("test", 0), (EXTERNAL, 1)):
            mine, theirs = lines[label][index], lines["notebook recipe"][index]
            stems = sorted(mine.keys() & theirs.keys())
            diff = bootstrap_ci([mine[s] - theirs[s] for s in stems])
            p = paired_wilcoxon(mine, theirs).p_value
            summary[f"{label} / {which}"] = {"difference": diff.mean, "low": diff.low, "high": diff.high, "p": p,
                                             "n": diff.n}
            print(f"  {label:<26} {which:<13} {diff.mean:+.4f} [{diff.low:+.4f}, {diff.high:+.4f}] "
                  f"(n {diff.n}, Wilcoxon p {p:.2g})")
    (out / "summary.json").write_text(json.dumps(summary, indent=1))


def _found_by(layout: ExperimentLayout, config: dict) -> str:
    """Which Optuna trial proposed the winner: a seeded point, a random start-up draw, or TPE itself, as
    the sampler recorded it in the study (polyp_ray/tuning/strategies.py, STARTUP_ATTR)."""
    from polyp_ray.stored_study import load_stored_study
    from polyp_ray.tuning.strategies import STARTUP_ATTR

    study = load_stored_study(layout)
    match = [t for t in study.trials if t.params.get("learning_rate") == config["learning_rate"]]
    if not match:
        return "its Optuna trial was not found"
    trial, startup = match[0], study.user_attrs.get(STARTUP_ATTR, [])
    how = ("a seeded point" if "fixed_params" in trial.system_attrs else
           "a random start-up draw" if trial.number in startup else "proposed by TPE")
    return f"Optuna trial #{trial.number}: {how} ({len(startup)} start-up draws, trials {startup})"


if __name__ == "__main__":
    main()
