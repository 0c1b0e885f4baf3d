"""A test image, a job and a dataset folder named ``<img src=x onerror=alert(1)>``: the report shows the
name as text, in the page and in the plots, and no script of it runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.report.browser import chromium, severe, wait_for
from tests.report.fake import HOSTILE

pytestmark = pytest.mark.slow

# Installed before the page's own scripts: records an alert instead of blocking the driver on it.
TRAP = "window.__alerts = []; window.alert = function (m) { window.__alerts.push(String(m)); };"


@pytest.fixture(scope="module")
def xss_report(xss_experiment: Path) -> Path:
    """The report the search wrote into its experiment folder (with the gallery)."""
    report = xss_experiment / "polyp_ray" / "report.html"
    assert report.is_file()
    return report


def test_the_hostile_stem_is_scored_in_the_test_split(xss_experiment: Path) -> None:
    ours = xss_experiment / "polyp_ray"
    assert HOSTILE in json.loads((ours / "dataset.json").read_text())["split"]["test"]
    trial = next((ours / "trials").iterdir())
    stems = [row["stem"] for row in json.loads((trial / "test_metrics.json").read_text())["per_image"]]
    assert HOSTILE in stems


def test_hostile_names_are_text_in_the_file(xss_report: Path) -> None:
    html = xss_report.read_text(encoding="utf-8")
    assert HOSTILE not in html
    assert html.count("&lt;img src=x onerror=alert(1)&gt;") >= 4  # title, job, dataset root, gallery stem


def test_no_hostile_markup_runs_in_chromium(xss_report: Path) -> None:
    with chromium() as driver:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": TRAP})
        driver.get(xss_report.as_uri())
        wait_for(driver, "document.querySelectorAll('.js-plotly-plot .main-svg').length > 0", 20.0)
        assert driver.execute_script("return window.__alerts") == []
        injected = "img[src=x], svg[onload], [onerror], [onload]"
        assert driver.execute_script(f"return document.querySelectorAll({injected!r}).length") == 0
        text = driver.execute_script("return document.body.innerText")
        assert HOSTILE in text  # the name is visible, as text
        stems = driver.execute_script(
            "return Array.from(document.querySelectorAll('.gallery .stem')).map(e => e.textContent)")
        assert HOSTILE in stems
        assert severe(driver) == []

