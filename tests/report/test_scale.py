"""The report of a search with more trials than a page can show one by one (fabricated: no Ray, no model):
the table's top rows, the faded curves and lines, the bounded importance sample, the progress figure,
and trials whose test scoring failed or used the older protocol."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from polyp_ray.report import build_report, figures, importance
from polyp_ray.report.experiment import load_experiment
from polyp_ray.report.progress import search_progress, summary
from polyp_ray.report.table import TOP_ROWS
from tests.report.fake import HOSTILE, write_experiment
from tests.report.fake_search import ERROR_MESSAGE, write_search


@pytest.fixture(scope="module")
def search(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_search(tmp_path_factory.mktemp("search"), 60, test_error_every=25)


@pytest.fixture(scope="module")
def page(search: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    out = build_report(search, tmp_path_factory.mktemp("report") / "r.html", gallery=False)
    return out.read_text(encoding="utf-8")


def _trials_csv(search: Path) -> pd.DataFrame:
    return pd.read_csv(search / "polyp_ray" / "trials.csv", dtype={"trial_id": str})


def test_the_table_shows_the_best_rows_and_hides_the_rest(search: Path, page: str) -> None:
    body = page.split('<tbody class="trials">')[1].split("</tbody>")[0]
    rows = re.findall(r"<tr class=\"trial\"( hidden)?><td data-sort=\"([^\"]+)\"", body)
    assert len(rows) == 60 and [hidden for hidden, _ in rows] == [""] * TOP_ROWS + [" hidden"] * (60 - TOP_ROWS)
    best_first = _trials_csv(search).sort_values("best_val_dice", ascending=False)["trial_id"].tolist()
    assert [trial for _, trial in rows] == best_first
    assert 'data-filters="model-table"' in page and "Show all 60</button>" in page


def test_a_failed_test_scoring_is_shown_on_its_row(search: Path, page: str) -> None:
    failed = _trials_csv(search).dropna(subset=["test_error"])["trial_id"].tolist()
    assert len(failed) == 2
    for trial in failed:
        row = page.split(f"<code>{trial}</code>")[1].split("</tr>")[0]
        assert f"test scoring failed: {ERROR_MESSAGE}" in row and "–" in row


def test_a_stale_test_file_of_a_failed_trial_is_not_shown_and_the_error_is_escaped(tmp_path: Path) -> None:
    exp = write_experiment(tmp_path)
    table = pd.read_csv(exp / "polyp_ray" / "trials.csv", dtype={"trial_id": str})
    table["test_error"] = [HOSTILE if t == "unet0" else None for t in table["trial_id"]]
    table.to_csv(exp / "polyp_ray" / "trials.csv", index=False)  # unet0's test_metrics.json stays behind
    loaded = load_experiment(exp)
    assert "unet0" not in loaded.tests and loaded.test_error("unet0") == HOSTILE
    html = build_report(exp, tmp_path / "r.html", gallery=False).read_text(encoding="utf-8")
    assert HOSTILE not in html and "test scoring failed: &lt;img src=x onerror=alert(1)&gt;" in html


def test_test_scores_of_the_older_protocol_are_named(tmp_path: Path) -> None:
    exp = write_experiment(tmp_path)
    path = exp / "polyp_ray" / "trials" / "enco0" / "test_metrics.json"
    path.write_text(json.dumps({k: v for k, v in json.loads(path.read_text()).items() if k != "protocol"}))
    notes = load_experiment(exp).notes
    assert len(notes) == 1 and "1 trial(s)" in notes[0] and notes[0].endswith(": enco0")


def test_curves_fade_the_rest_and_draw_the_best_last(search: Path) -> None:
    exp = load_experiment(search)
    fig = figures.learning_curves(exp, figures.family_colours(sorted(set(exp.trials["family"]))), top=10)
    faded, *drawn = [t for t in fig.data if t.name != "stopped by ASHA"]
    assert faded.name == "the other 50 trials" and list(faded.y).count(None) == 50
    assert len(drawn) == 10 and drawn[-1].customdata[0].startswith(exp.best_trial_id)
    assert [t.customdata[0].split()[0] for t in drawn] == exp.trials["trial_id"].head(10).tolist()[::-1]


def test_parallel_coordinates_fade_the_rest_by_score_and_draw_the_best_last(search: Path) -> None:
    exp = load_experiment(search)
    fig = figures.parallel_coordinates(exp, top=10, bins=5)
    assert fig is not None
    faded = [t for t in fig.data if t.hoverinfo == "skip" and t.mode == "lines"]
    named = [t for t in fig.data if t.customdata is not None]
    assert len(faded) == 5 and sum(list(t.y).count(None) for t in faded) == 50
    assert len(named) == 10 and named[-1].customdata[0].startswith(exp.best_trial_id)


def test_importance_uses_the_best_and_a_seeded_sample_of_the_rest(search: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    points = [({"x": i}, float(-i)) for i in range(1000)]
    chosen = importance.sample(points, 400, 100)
    assert len(chosen) == 400 and chosen[:100] == points[:100] and chosen == importance.sample(points, 400, 100)
    assert len({p[0]["x"] for p in chosen}) == 400 and importance.sample(points[:50], 400, 100) == points[:50]
    monkeypatch.setattr(importance, "SAMPLE_SIZE", 30)
    monkeypatch.setattr(importance, "SAMPLE_BEST", 10)
    result = importance.param_importance(load_experiment(search))
    assert (result.used, result.scored, result.kept_best) == (30, 60, 10) and result.sampled
    assert sum(result.scores.values()) == pytest.approx(1.0)


def test_the_page_states_the_importance_sample(page: str) -> None:
    assert "over the best validation scores of all 60 scored trials" in page


def test_progress_follows_the_best_score_the_clock_and_the_compute(search: Path) -> None:
    exp = load_experiment(search)
    table = _trials_csv(search)
    found = search_progress(exp)
    # Only the points where the best improves, then the search's end: the curve runs on to it.
    assert np.all(np.diff(found.best[:-1]) > 0) and found.best[-1] == found.best[-2]
    assert found.best[-1] == pytest.approx(table["best_val_dice"].max())
    assert np.all(np.diff(found.hours) >= 0) and np.all(np.diff(found.cpu_hours) >= 0)
    assert found.cpu_hours[-1] == pytest.approx(table["cpu_hours"].sum())
    assert found.gpu_hours[-1] == pytest.approx(table["gpu_hours"].sum())
    lines = [json.loads(line) for folder in table["trial_dir"]
             for line in (Path(folder) / "result.json").read_text().splitlines()]
    start = min(line["timestamp"] - line["time_total_s"] for line in lines)
    assert found.hours[-1] == pytest.approx((max(line["timestamp"] for line in lines) - start) / 3600)
    assert found.rungs == {e: int((table["epochs_run"] >= e).sum()) for e in (1, 3, 9)}
    assert f"Of 60 trials, 60 reached epoch 1, {found.rungs[3]} reached epoch 3" in summary(found, "val_dice")


def test_progress_without_timestamps_still_counts_the_rungs(tmp_path: Path) -> None:
    found = search_progress(load_experiment(write_experiment(tmp_path)))
    assert not found.timed and found.rungs == {1: 6, 2: 3, 4: 3}
    assert "No per-epoch timestamps" in summary(found, "val_dice")
