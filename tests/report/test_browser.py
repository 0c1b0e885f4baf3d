"""The report of a real (tiny) search, opened in headless Chromium: no console errors, the table and the
plots render, the table sorts, and a screenshot shows it (kept in $POLYP_RAY_SCREENSHOTS when set)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from polyp_ray.gallery import WORST_EXTERNAL
from tests.report.browser import chromium, full_screenshot, severe, wait_for

pytestmark = pytest.mark.slow


COUNT = "return document.querySelectorAll({!r}).length"
GALLERY_LOADED = ("return Array.from(document.querySelectorAll('.gallery img'))"
                  ".filter(i => i.naturalWidth).length")
HEADERS = "Array.from(document.querySelectorAll('#model-table thead th'))"
VAL_DICE = f"{HEADERS}.findIndex(h => h.textContent === 'val Dice')"
TRIAL_VAL_DICE = ("return Array.from(document.querySelectorAll('#model-table tbody.trials tr'))"
                  f".map(r => Number(r.children[{VAL_DICE}].dataset.sort))")


def test_report_renders_without_console_errors(tiny_report: Path, tiny_experiment: Path,
                                               tmp_path: Path) -> None:
    trials = len(pd.read_csv(tiny_experiment / "polyp_ray" / "trials.csv"))
    with chromium() as driver:
        driver.get(tiny_report.as_uri())
        wait_for(driver, "document.querySelectorAll('.js-plotly-plot .main-svg').length >= 4")
        assert severe(driver) == []
        families = driver.execute_script(COUNT.format("#model-table tr.family"))
        assert families >= 1 and driver.execute_script(COUNT.format("#model-table tr.trial")) == trials
        assert driver.execute_script(COUNT.format(".plotly, .js-plotly-plot")) >= 4
        curves = driver.execute_script(COUNT.format(".js-plotly-plot .scatterlayer .trace"))
        assert curves >= trials  # one learning curve per trial, at least
        # every test image of the tiny split, then the worst of the external set's (it has more than that)
        assert driver.execute_script(GALLERY_LOADED) == 12 + WORST_EXTERNAL
        assert "(external)" in driver.execute_script("return document.querySelector('#gallery').textContent")
        shot = tmp_path / "report.png"
        full_screenshot(driver, shot)
    _check_and_keep(shot)


@pytest.mark.kvasir
def test_report_of_a_kvasir_search_renders_without_console_errors(kvasir_experiment: Path, tmp_path: Path) -> None:
    report = kvasir_experiment.parent.parent / "reports" / f"{kvasir_experiment.name}.html"
    with chromium() as driver:
        driver.get(report.as_uri())
        wait_for(driver, "document.querySelectorAll('.js-plotly-plot .main-svg').length >= 4")
        assert severe(driver) == []
        assert driver.execute_script(COUNT.format("#model-table tr.trial")) == 2
        assert driver.execute_script(COUNT.format(".plotly, .js-plotly-plot")) >= 4
        assert driver.execute_script(GALLERY_LOADED) > 0
        assert "Kvasir-SEG" in driver.find_element("tag name", "body").text
        shot = tmp_path / "kvasir_report.png"
        full_screenshot(driver, shot)
    _check_and_keep(shot)


def test_clicking_a_header_sorts_the_trials(tiny_report: Path) -> None:
    with chromium() as driver:
        driver.get(tiny_report.as_uri())
        header = driver.execute_script(f"return {HEADERS}[{VAL_DICE}]")
        header.click()
        ascending = driver.execute_script(TRIAL_VAL_DICE)
        header.click()
        descending = driver.execute_script(TRIAL_VAL_DICE)
        assert ascending == sorted(ascending) and descending == sorted(ascending, reverse=True)
        assert header.get_attribute("aria-sort") == "descending"
        assert severe(driver) == []



def _check_and_keep(shot: Path) -> None:
    """Not blank: a screenshot of a page that failed to render is one flat colour."""
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert pixels.shape[0] > 2000 and pixels.std() > 20, "the screenshot looks blank"
    keep = os.environ.get("POLYP_RAY_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, Path(keep) / shot.name)


RATES = re.compile(r"median \d\.\d{3} · \d+% below 0\.1 · (\d+%|–) empty")


def test_every_test_and_external_column_shows_its_failure_rates_in_chromium(tiny_report: Path) -> None:
    """Seen as a reader sees it: median, failure share and empty-prediction share under every mean of the
    model table's test column and of each set of the generalisation table, the distribution plot drawn
    beside it, and the literature's table with seven columns per set."""
    with chromium() as driver:
        driver.get(tiny_report.as_uri())
        wait_for(driver, "document.querySelectorAll('.beside .js-plotly-plot .main-svg').length >= 1")
        assert severe(driver) == []
        cells = driver.execute_script(
            "return Array.from(document.querySelectorAll('table.generalisation tbody td'))"
            ".filter(c => c.querySelector('small.rates')).map(c => c.innerText)")
        rows = driver.execute_script(COUNT.format("table.generalisation tbody tr"))
        sets = driver.execute_script(COUNT.format("table.generalisation thead th")) - 2
        # test, each training source's test split (the tiny search has two sources) and the external set
        assert rows >= 2 and sets == 4 and len(cells) == rows * sets
        assert all(RATES.search(" ".join(c.split())) for c in cells)
        trials = driver.execute_script(COUNT.format("#model-table tbody.trials tr"))
        model_rates = driver.execute_script(COUNT.format("#model-table tbody.trials small.rates"))
        assert model_rates == trials
        boxes = driver.execute_script(COUNT.format(".beside .js-plotly-plot .boxlayer .trace"))
        assert boxes >= 2
        heads = driver.execute_script("return Array.from(document.querySelectorAll('table.literature th[scope=col]'))"
                                      ".map(h => h.textContent)")
        assert heads == ["mDice", "mIoU", "F^w_β", "S_α", "mean E_φ", "max E_φ", "MAE"] * sets
        headline = driver.find_element("css selector", "p.headline").text
        assert "worst external set, other_centre" in headline and "ahead of the runner-up" in headline
