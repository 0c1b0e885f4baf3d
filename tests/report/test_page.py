"""The navigation bar is made from the sections the page holds: none without a link, no link to nothing."""

from __future__ import annotations

import re
from pathlib import Path

from polyp_ray.report.build import render
from polyp_ray.report.experiment import load_experiment
from polyp_ray.report.gallery import Gallery
from tests.report.fake import write_experiment


def test_every_section_has_a_link_and_every_link_a_section(tmp_path: Path) -> None:
    html = render(load_experiment(write_experiment(tmp_path)), Gallery("", [], ["no gallery in this test"]))
    nav = html[html.index("<nav>"):html.index("</nav>")]
    links = re.findall(r'<a href="#([^"]+)">', nav)
    sections = re.findall(r'<section id="([^"]+)">', html)
    assert links == sections and "generalisation" in links  # the one the old hand-written list lacked
