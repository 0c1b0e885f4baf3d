"""A fabricated 2,000-trial search's report in headless Chromium: it loads without console errors, the
table shows the best rows, the filter and "show all" work on a click, and the plots render."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from polyp_ray.report.table import TOP_ROWS
from tests.report.browser import chromium, severe, wait_for

pytestmark = pytest.mark.slow

VISIBLE = "return Array.from(document.querySelectorAll('#model-table tbody.trials tr')).filter(r => !r.hidden)"
IDS = ".map(r => r.querySelector('code').textContent)"


def test_a_2000_trial_report_loads_filters_and_shows_all(large_report: tuple[Path, Path]) -> None:
    exp, report = large_report
    table = pd.read_csv(exp / "polyp_ray" / "trials.csv", dtype={"trial_id": str})
    best_first = table.sort_values("best_val_dice", ascending=False)["trial_id"].tolist()
    assert report.stat().st_size < 10e6
    with chromium() as driver:
        driver.get(report.as_uri())
        wait_for(driver, "document.querySelectorAll('.js-plotly-plot .main-svg').length >= 5", 60.0)
        assert severe(driver) == []
        assert driver.execute_script("return document.querySelectorAll('#model-table tbody.trials tr').length") == 2000
        assert driver.execute_script(VISIBLE + IDS) == best_first[:TOP_ROWS]
        height = driver.execute_script("return document.documentElement.scrollHeight")
        assert height < 12000  # all 2,000 rows would be ~60,000 px

        family = "encoder_decoder_resnet50"
        members = table.loc[(table["model"] == "encoder_decoder") & (table["encoder"] == "resnet50"), "trial_id"]
        driver.find_element("css selector", 'input[data-filters="model-table"]').send_keys(family)
        shown = driver.execute_script(VISIBLE + IDS)
        assert len(shown) == TOP_ROWS and set(shown) <= set(members)
        button = driver.find_element("css selector", 'button[data-shows-all="model-table"]')
        button.click()
        assert sorted(driver.execute_script(VISIBLE + IDS)) == sorted(members)
        assert button.get_attribute("aria-pressed") == "true" and button.text == f"Show the first {TOP_ROWS}"
        driver.find_element("css selector", 'input[data-filters="model-table"]').clear()
        driver.execute_script("document.querySelector('input[data-filters]').dispatchEvent(new Event('input'))")
        assert len(driver.execute_script(VISIBLE)) == 2000
        assert severe(driver) == []

