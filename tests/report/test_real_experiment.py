"""The report of the shared tiny search (no browser): the search wrote its own report, the gallery was
predicted by the best model, the figures carry what the files say."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from polyp_ray.report.experiment import load_experiment
from polyp_ray.report.gallery import build_gallery

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


def test_gallery_is_predicted_by_the_best_model_and_matches_the_evaluation(tiny_experiment: Path) -> None:
    exp = load_experiment(tiny_experiment)
    gallery = build_gallery(exp)
    assert not gallery.notes and gallery.trial_id == exp.best_trial_id
    scores = exp.per_image(gallery.trial_id)
    assert [c.stem for c in gallery.cases] == sorted(scores, key=lambda s: (scores[s], s))  # 12 < 12 + 4
    assert all(c.png.startswith(b"\x89PNG") for c in gallery.cases)


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
