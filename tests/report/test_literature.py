"""The report's honest failure rates and the literature's layout, from a hand-written experiment (fast: no
Ray, no model): what the headline, the tables and the distribution plot say about known numbers."""

from __future__ import annotations

import json
import re
from pathlib import Path

from polyp_ray.report import build_report
from tests.report.fake import write_experiment

EXTERNAL = "cvc-colondb"


def _entry(dice: float, failures: float, empty: float, median: float, mae: float) -> dict:
    return {"dice": dice, "dice_low": dice - 0.05, "dice_high": dice + 0.05, "iou": dice * 0.8, "n": 30,
            "median": median, "failures": failures, "empty_predictions": empty, "wf_beta": dice * 0.9,
            "s_alpha": 0.7, "mean_e_phi": 0.75, "max_e_phi": 0.8, "mae": mae}


def _with_generalisation(tmp_path: Path) -> Path:
    exp = write_experiment(tmp_path)
    rows = [{"label": "winner", "kind": "winner", "family": "unet", "trial_ids": ["unet0"], "tta": False,
             "threshold": 0.5, "sets": {"test": _entry(0.81, 0.03, 0.02, 0.86, 0.04),
                                        EXTERNAL: _entry(0.29, 0.46, 0.40, 0.17, 0.09)},
             "per_image_dice": {"test": [0.8] * 30, EXTERNAL: [0.0] * 14 + [0.5] * 16}},
            {"label": "best encoder_decoder", "kind": "family", "family": "encoder_decoder",
             "trial_ids": ["enco0"], "tta": False, "threshold": 0.5,
             "sets": {"test": _entry(0.70, 0.05, 0.01, 0.74, 0.03), EXTERNAL: _entry(0.35, 0.30, 0.20, 0.36, 0.12)},
             "per_image_dice": {"test": [0.7] * 30, EXTERNAL: [0.35] * 30}}]
    body = {"protocol": "original_resolution", "metric": "val_dice", "rows": rows,
            "sets": {"test": {"n_images": 30},
                     EXTERNAL: {"n_images": 30, "name": EXTERNAL, "root": "/data/x", "layout": "kvasir"}}}
    (exp / "polyp_ray" / "generalisation.json").write_text(json.dumps(body))
    return exp


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", "", html).split())


def test_the_headline_names_the_worst_external_set_and_how_the_winner_was_chosen(tmp_path: Path) -> None:
    html = build_report(_with_generalisation(tmp_path), tmp_path / "r.html", gallery=False).read_text()
    headline = _text(re.search(r'<p class="headline">.*?</p>', html, re.S).group(0))  # type: ignore[union-attr]
    assert f"On its worst external set, {EXTERNAL}: mean Dice 0.290, 46% of its images below Dice 0.1" in headline
    assert "median 0.170, 40% empty predictions" in headline
    # The fake's best two trials by validation: unet0 at 0.65, unet1 at 0.60.
    assert "Chosen by validation val_dice (0.6500), 0.0500 ahead of the runner-up" in headline


def test_every_test_and_external_column_shows_median_failures_and_empty_predictions(tmp_path: Path) -> None:
    html = build_report(_with_generalisation(tmp_path), tmp_path / "r.html", gallery=False).read_text()
    table = re.search(r'<table class="generalisation">.*?</table>', html, re.S).group(0)  # type: ignore[union-attr]
    text = _text(table)
    assert "median 0.170 · 46% below 0.1 · 40% empty" in text and "median 0.860 · 3% below 0.1 · 2% empty" in text
    # Columns are named by dataset: the search's own folder for its test split, never a layout name.
    heads = _text(re.search(r"<thead>.*?</thead>", table, re.S).group(0))  # type: ignore[union-attr]
    assert "(test split)" in heads and EXTERNAL in heads and "kvasir" not in heads
    # The model table's test Dice carries the same three figures, from each trial's per-image rows.
    model_table = _text(re.search(r'<table id="model-table".*?</table>', html, re.S).group(0))  # type: ignore[union-attr]
    assert re.search(r"median \d\.\d{3} · \d+% below 0\.1 · 0% empty", model_table)
    # The distribution plot sits beside the table, one box trace per (non-TTA) model.
    beside = re.search(r'<div class="beside">.*?</div>\s*<p class="caption">', html, re.S)
    assert beside and beside.group(0).count('"type":"box"') == 2


def test_the_literature_layout_has_pranets_seven_columns_per_set(tmp_path: Path) -> None:
    html = build_report(_with_generalisation(tmp_path), tmp_path / "r.html", gallery=False).read_text()
    table = re.search(r'<table class="literature plain">.*?</table>', html, re.S).group(0)  # type: ignore[union-attr]
    heads = re.findall(r'<th scope="col"[^>]*>([^<]*)</th>', table)
    assert heads == ["mDice", "mIoU", "F^w_β", "S_α", "mean E_φ", "max E_φ", "MAE"] * 2
    winner = re.search(r'<tr><th scope="row">winner</th>(.*?)</tr>', table).group(1)  # type: ignore[union-attr]
    cells = re.findall(r"<td>(.*?)</td>", winner)
    # The best value of each column is bold: the winner has the best test Dice, the family the lower MAE.
    assert cells[0] == "<b>0.810</b>" and cells[6] == "0.040" and cells[7] == "0.290"
    family = re.search(r'<tr><th scope="row">best encoder_decoder</th>(.*?)</tr>', table).group(1)  # type: ignore[union-attr]
    assert re.findall(r"<td>(.*?)</td>", family)[6] == "<b>0.030</b>"
