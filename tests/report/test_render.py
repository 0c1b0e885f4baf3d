"""The report from hand-written experiment folders (fast: no Ray, no model): structure, escaping,
the ranking sentence, importance and the CLI's errors."""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from polyp_ray.experiment import ExperimentLayout
from polyp_ray.report import build_report, main
from polyp_ray.report import comparison as compare
from polyp_ray.report.comparison import Ranking
from polyp_ray.report.experiment import load_experiment
from polyp_ray.report.gallery import build_gallery
from polyp_ray.report.importance import param_importance
from polyp_ray.report.sections import ranking
from polyp_ray.stats import Interval, PairedTest
from tests.report.fake import CLOSER, HOSTILE, write_experiment


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text of each <tbody>'s rows."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def of(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.tags if tag == name]


def _parse(html: str) -> Tags:
    parser = Tags()
    parser.feed(html)
    return parser


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    return write_experiment(tmp_path, name=f"exp {HOSTILE}")


def _html(exp: Path, tmp_path: Path) -> str:
    return build_report(exp, tmp_path / "report.html", gallery=False).read_text(encoding="utf-8")


def test_every_string_from_the_experiment_is_escaped(fake: Path, tmp_path: Path) -> None:
    html = _html(fake, tmp_path)
    assert HOSTILE not in html and CLOSER not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html  # shown as text: title, dataset root, job name ...
    tags = _parse(html)
    assert not [a for a in tags.of("img") if not str(a.get("src", "")).startswith("data:image/png;base64,")]
    assert not [a for a in tags.of("script") if "src" in a]
    assert not [attrs for _, attrs in tags.tags if any(k.startswith("on") for k in attrs)]


def test_only_our_scripts_may_run(fake: Path, tmp_path: Path) -> None:
    html = _html(fake, tmp_path)
    metas = _parse(html).of("meta")
    policy = next(a["content"] for a in metas if a.get("http-equiv") == "Content-Security-Policy")
    hashes = re.findall(r"'sha256-[A-Za-z0-9+/=]+'", str(policy))
    assert len(hashes) == html.count("<script") == 2 + html.count('class="plotly-graph-div"')
    assert "unsafe-inline" not in str(policy).split("script-src")[1].split(";")[0]
    assert "default-src 'none'" in str(policy)


def test_self_contained_with_plotly_inlined_once(fake: Path, tmp_path: Path) -> None:
    html = _html(fake, tmp_path)
    assert html.count("* plotly.js v") == 1
    markup = re.sub(r"<script>.*?</script>", "", html, flags=re.S)  # plotly.js names its own web site
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", markup)


def test_comparison_table_has_a_row_per_family_and_per_trial(fake: Path, tmp_path: Path) -> None:
    html = _html(fake, tmp_path)
    families = html.split('<tbody class="families">')[1].split("</tbody>")[0]
    trials = html.split('<tbody class="trials">')[1].split("</tbody>")[0]
    assert families.count("<tr") == 2 and trials.count("<tr") == 6
    assert 'class="family best"' in families
    assert re.search(r"0\.\d{3}<br><small>\[0\.\d{3}, 0\.\d{3}\]</small>", families)  # mean, [CI] below
    assert "0.66" in html and "0.48" in html and "notebook" in html


def test_families_are_represented_by_their_best_validation_trial(fake: Path) -> None:
    exp = load_experiment(fake)
    best = compare.family_best(exp)
    assert list(best) == ["unet", "encoder_decoder"]
    assert best["unet"] == "unet0" and best["encoder_decoder"] == "enco0"
    rows = {r.label: r for r in compare.family_rows(exp)}
    assert rows["unet"].n_trials == 3 and rows["unet"].wall_s == pytest.approx(90.0)
    assert rows["unet"].test_dice.low < rows["unet"].test_dice.mean < rows["unet"].test_dice.high


def test_a_clear_difference_is_called_distinguishable(fake: Path, tmp_path: Path) -> None:
    result = compare.ranking(load_experiment(fake))
    assert result.test is not None and result.test.distinguishable
    assert "Distinguishable:" in _html(fake, tmp_path)


def test_ranking_sentence_for_a_tie_identical_scores_and_one_family(tmp_path: Path) -> None:
    interval = Interval(0.5, 0.4, 0.6, 30)
    tests = {"a1": interval, "b1": interval}
    tie = Ranking(["a", "b"], {"a": "a1", "b": "b1"}, PairedTest(30, 0.5, 0.49, 200.0, 0.4))
    assert "Not distinguishable:" in ranking(tie, tests) and "p = 0.4" in ranking(tie, tests)
    same = Ranking(["a", "b"], {"a": "a1", "b": "b1"},
                   PairedTest(30, 0.5, 0.5, None, None, "every image ties"))
    assert "every image ties" in ranking(same, tests)
    few = Ranking(["a", "b"], {"a": "a1", "b": "b1"}, PairedTest(4, 0.5, 0.3, 0.0, 0.125))
    assert "With only 4 images" in ranking(few, tests)
    single = write_experiment(tmp_path, families=("unet",))
    assert "Only one model family" in _html(single, tmp_path)


def test_importance_leaves_out_conditional_parameters(fake: Path) -> None:
    result = param_importance(load_experiment(fake))
    assert set(result.scores) == {"model", "learning_rate", "encoder_weights"}
    assert result.left_out == ["base_width"]
    assert sum(result.scores.values()) == pytest.approx(1.0)


def test_importance_needs_two_trials(tmp_path: Path) -> None:
    exp = write_experiment(tmp_path, families=("unet",), trials_per_family=1)
    assert "needs at least 2 trials" in param_importance(load_experiment(exp)).reason
    assert "Hyperparameter importance not computed" in _html(exp, tmp_path)


def test_an_experiment_moved_to_another_machine_still_finds_its_trials(fake: Path, tmp_path: Path) -> None:
    moved = shutil.move(fake, tmp_path / "moved")  # trials.csv still names the old trial folders
    exp = load_experiment(moved)
    assert len(exp.histories) == 6 and not exp.notes
    assert exp.histories["unet0"]["epoch"].tolist() == [1, 2, 3, 4]


def test_cli_writes_into_reports_under_the_working_directory(fake: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    own = ExperimentLayout(fake).report  # the one the README points to: rewritten, not left stale
    own.write_text("<html>the old report</html>")
    assert main([str(fake), "--no-gallery"]) == 0
    copy = tmp_path / "reports" / f"{fake.name}.html"
    assert "the old report" not in own.read_text() and own.read_text() == copy.read_text()
    assert "<html" in copy.read_text()
    assert capsys.readouterr().out.splitlines() == [f"report: {own}", f"report: {copy}"]
    elsewhere = tmp_path / "one.html"
    assert main([str(fake), "--no-gallery", "-o", str(elsewhere)]) == 0  # -o: that file only
    assert elsewhere.is_file() and capsys.readouterr().out.strip() == f"report: {elsewhere}"


@pytest.mark.parametrize(("setup", "message"), [
    (lambda root: root / "missing", "experiment folder not found"),
    (lambda root: write_experiment(root).parent, "a storage folder, not an experiment; its experiments: exp"),
    (lambda root: (root / "empty").mkdir() or root / "empty", "no polyp_ray/trials.csv"),
])
def test_cli_errors_are_one_line(setup, message: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([str(setup(tmp_path)), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_an_errored_trial_without_scores_is_listed_not_fatal(fake: Path, tmp_path: Path) -> None:
    table = pd.read_csv(fake / "polyp_ray" / "trials.csv", dtype={"trial_id": str})
    failed = table.index[table["trial_id"] == "enco0"][0]
    for column in ("best_val_dice", "best_val_iou", "test_dice", "test_iou", "n_params"):
        table.loc[failed, column] = float("nan")
    table.loc[failed, "status"] = "ERROR"
    table.to_csv(fake / "polyp_ray" / "trials.csv", index=False)
    shutil.rmtree(fake / "polyp_ray" / "trials" / "enco0")
    html = _html(fake, tmp_path)
    row = html.split("<code>enco0</code>")[1].split("</tr>")[0]
    assert "ERROR" in row and "–" in row
    assert compare.family_best(load_experiment(fake))["encoder_decoder"].startswith("enco1")  # next best


def test_gallery_falls_back_to_the_saved_strips_without_a_model(fake: Path) -> None:
    strips = fake / "polyp_ray" / "trials" / "unet0" / "predictions"
    strips.mkdir()
    for stem in ("img000", "img001"):
        Image.new("RGB", (96, 32)).save(strips / f"{stem}.png")
    gallery = build_gallery(load_experiment(fake))
    assert [c.group for c in gallery.cases] == ["shown", "shown"]
    assert "showing the strips the search wrote" in gallery.notes[0]


def test_grouping_line_says_what_was_joined_not_that_there_were_duplicates() -> None:
    from polyp_ray.report.sections import _grouping

    alone = _grouping({"n_groups": 200, "largest_group": 1, "group_source": "near-duplicates"})
    assert "no near-duplicates or video frames found among 200 images" in alone and "200 groups" not in alone
    video = _grouping({"n_groups": 25, "largest_group": 40, "group_source": "near-duplicates + consecutive frames",
                       "cross_split_neighbours": [{"stem": "3"}]})
    assert "25 groups kept whole (near-duplicates and consecutive video frames joined; largest 40 images)" in video
    assert "1 val/test frame(s) with their video neighbour in training" in video


def test_cpu_only_search_shows_no_gpu_column_and_every_family_in_the_size_plot(fake: Path, tmp_path: Path) -> None:
    import pandas as pd

    html = _html(fake, tmp_path)  # the fake search ran on CPUs only
    head = html.split('<table id="model-table"')[1].split("</thead>")[0]
    assert ">CPU-h<" in head and ">GPU-h<" not in head
    from polyp_ray.report.figures import dice_vs_size

    exp = load_experiment(fake)
    best = compare.family_best(exp)
    figure = dice_vs_size(exp, best, {})
    assert figure is not None and len(figure.data) == len(best) == 2
    assert all(trace.visible in (None, True) for trace in figure.data)  # no family hidden until clicked
    table = fake / "polyp_ray" / "trials.csv"
    rows = pd.read_csv(table)
    rows.loc[0, "gpu_hours"] = 0.5
    rows.to_csv(table, index=False)
    assert ">GPU-h<" in _html(fake, tmp_path / "gpu").split('<table id="model-table"')[1].split("</thead>")[0]


def test_small_durations_read_in_minutes() -> None:
    import numpy as np

    from polyp_ray.report.progress import Progress, summary

    hours = np.array([0.0, 0.05, 0.2])
    progress = Progress(hours=hours, cpu_hours=hours * 2, gpu_hours=np.zeros(3), best=np.array([0.1, 0.5, 0.5]),
                        rungs={1: 3}, trials=3)
    text = summary(progress, "val_dice")
    assert "after 3 of the search's 12 minutes (6 of 24 CPU-minutes)" in text and "GPU" not in text
