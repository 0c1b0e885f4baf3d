"""The report of the shared tiny search (no browser): the search wrote its own report and its gallery,
the figures carry what the files say."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from polyp_ray.experiment import ExperimentLayout
from polyp_ray.gallery import WORST_EXTERNAL, read_gallery
from polyp_ray.report.experiment import load_experiment
from polyp_ray.report.gallery import build_gallery
from polyp_ray.strategy_config import SEEDED, STARTUP

pytestmark = pytest.mark.slow


def test_the_search_wrote_its_report_into_reports(tiny_experiment: Path) -> None:
    written = tiny_experiment.parent.parent / "reports" / f"{tiny_experiment.name}.html"
    assert written.is_file() and 'id="model-table"' in written.read_text(encoding="utf-8")


def test_experiment_folder_is_read_completely(tiny_experiment: Path) -> None:
    exp = load_experiment(tiny_experiment)
    table = pd.read_csv(tiny_experiment / "polyp_ray" / "trials.csv", dtype={"trial_id": str})
    assert set(exp.histories) == set(table["trial_id"]) == set(exp.tests) and not exp.notes
    for trial_id, history in exp.histories.items():
        assert history["epoch"].tolist() == list(range(1, int(exp.trial_row(trial_id)["epochs_run"]) + 1))
    assert exp.best_trial_id == table.sort_values("best_val_dice", ascending=False)["trial_id"].iloc[0]


def test_trials_csv_and_the_report_say_who_proposed_each_trial(tiny_experiment: Path) -> None:
    # The tiny search seeds 3 points (points_to_evaluate), then TPE (2 start-up draws at 6 trials) proposes.
    layout = ExperimentLayout(tiny_experiment)
    table = pd.read_csv(layout.trials_table, dtype={"trial_id": str}, keep_default_na=False)
    assert (table["proposed_by"] == SEEDED).sum() == 3
    assert set(table["proposed_by"]) <= {SEEDED, STARTUP, "tpe"}
    best = load_experiment(tiny_experiment).best_trial_id
    origin = table.set_index("trial_id").loc[best, "proposed_by"]
    expected = {SEEDED: "The winner was a seeded point", STARTUP: "random start-up draws",
                "tpe": "The winner was proposed by the sampler (tpe)."}[origin]
    assert expected in layout.report.read_text(encoding="utf-8")


def test_the_search_renders_the_gallery_the_best_model_would(tiny_experiment: Path, tmp_path: Path) -> None:
    """The search wrote the winner's gallery (the report starts no TensorFlow); an experiment without it
    gets the same gallery from the best model, predicted by the report."""
    exp = load_experiment(tiny_experiment)
    rendered = build_gallery(exp)
    assert not rendered.notes and rendered.trial_id == exp.best_trial_id
    assert read_gallery(exp.layout.gallery, rendered.trial_id) == rendered.cases
    scores = exp.per_image(rendered.trial_id)
    assert [c.stem for c in rendered.cases] == sorted(scores, key=lambda s: (scores[s], s))  # 12 < 12 + 4
    assert [c.dice for c in rendered.cases] == [scores[c.stem] for c in rendered.cases]
    assert all(c.png.startswith(b"\x89PNG") for c in rendered.cases)
    # ... and its worst images on the external set, the lowest of the Dice the generalisation table holds
    winner = next(r for r in json.loads(exp.layout.generalisation.read_text())["rows"] if r["label"] == "winner")
    [(name, external)] = rendered.external
    assert name == "other_centre" and [c.group for c in external] == ["worst"] * WORST_EXTERNAL
    assert [c.dice for c in external] == sorted(winner["per_image_dice"]["other_centre"])[:WORST_EXTERNAL]
    assert {c.stem for c in external} <= {p.stem for p in (tiny_experiment.parents[1] / "external").rglob("*.png")}
    assert "Worst 8 on other_centre (external)" in (exp.layout.report).read_text(encoding="utf-8")

    older = tmp_path / "older"  # the experiment as a search before the gallery was saved left it
    shutil.copytree(tiny_experiment / "polyp_ray", older / "polyp_ray", ignore=shutil.ignore_patterns("*.keras"))
    shutil.copyfile(exp.layout.best_model, older / "polyp_ray" / "best" / "model.keras")
    for trial in tiny_experiment.glob("tune_trial_*"):
        shutil.copytree(trial, older / trial.name, ignore=shutil.ignore_patterns("checkpoint_*"))
    shutil.rmtree(ExperimentLayout(older).gallery.folder)
    predicted = build_gallery(load_experiment(older))
    assert not predicted.notes
    assert [(c.stem, c.group, c.dice) for c in predicted.cases] == [(c.stem, c.group, c.dice) for c in rendered.cases]
    same = sum(a.png == b.png for a, b in zip(predicted.cases, rendered.cases, strict=True))
    assert same >= len(rendered.cases) - 1, f"{same} of {len(rendered.cases)} strips alike"


def test_page_marks_the_asha_rungs_and_the_best_trial(tiny_report: Path, tiny_experiment: Path) -> None:
    html = tiny_report.read_text(encoding="utf-8")
    assert "ASHA rung 1" in html and "ASHA rung 2" in html and "ASHA rung 4" not in html  # grace 1, factor 2
    best = load_experiment(tiny_experiment).best_trial_id
    assert f"best {best}" in html
    dataset = json.loads((tiny_experiment / "polyp_ray" / "dataset.json").read_text())
    assert dataset["sha256"] in html and "python -m polyp_ray.search" in html
    if dataset["largest_group"] == 1:  # every group a single image: the page says none was found
        assert f"no near-duplicates or video frames found among {dataset['n_groups']} images" in html
    else:
        assert f"split in {dataset['n_groups']} groups" in html and f"largest {dataset['largest_group']}" in html
    assert "at each image's original resolution" in html


def test_importance_reads_the_searchs_stored_optuna_study(tiny_experiment: Path) -> None:
    from polyp_ray.report.importance import param_importance

    exp = load_experiment(tiny_experiment)
    stored = param_importance(exp)
    assert stored.source == "the search's Optuna study" and stored.scored == len(exp.trials) == 6
    record = exp.layout.optuna_record
    record.rename(record.with_suffix(".away"))  # an experiment from before the study was kept
    try:
        rebuilt = param_importance(load_experiment(tiny_experiment))
    finally:
        record.with_suffix(".away").rename(record)
    assert rebuilt.source == "trials.csv" and rebuilt.scored == 6
    assert rebuilt.scores.keys() == stored.scores.keys()
