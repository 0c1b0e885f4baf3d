"""Report fixtures: the shared tiny search's report, and a fabricated 2,000-trial search's. (The search
whose names are markup is tests/conftest.py's ``xss_experiment``.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from polyp_ray.report import build_report


@pytest.fixture(scope="session")
def tiny_report(tiny_experiment: Path) -> Path:
    """The report the shared tiny search wrote into its experiment folder, with the gallery (the best model
    predicted): what a user opens, not a second build of it."""
    report = tiny_experiment / "polyp_ray" / "report.html"
    assert report.is_file()
    return report


@pytest.fixture(scope="session")
def large_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A fabricated 2,000-trial search and its report (no gallery: no model), built once per session."""
    from tests.report.fake_search import write_search

    exp = write_search(tmp_path_factory.mktemp("large_search"), 2000)
    return exp, build_report(exp, tmp_path_factory.mktemp("large_report") / "large.html", gallery=False)
