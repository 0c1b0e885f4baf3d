"""``build_report``: an experiment folder in, one self-contained HTML file out."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from polyp_ray.experiment import ExperimentLayout
from polyp_ray.report import comparison as compare
from polyp_ray.report import cross_validation, figures, generalisation, literature, progress, sections, strategy, table
from polyp_ray.report.experiment import Experiment, ReportError, load_experiment
from polyp_ray.report.gallery import Gallery, build_gallery
from polyp_ray.report.headline import headline
from polyp_ray.report.importance import param_importance
from polyp_ray.report.page import Page


def default_output(exp_dir: str | Path) -> Path:
    return Path.cwd() / "reports" / f"{Path(exp_dir).expanduser().resolve().name}.html"


def build_report(exp_dir: str | Path, out: str | Path | None = None, gallery: bool = True) -> Path:
    """Write the report of ``exp_dir`` to ``out`` (default ``reports/<experiment>.html``); return its path.

    ``gallery=False`` skips loading the best model (no TensorFlow import): the gallery section then
    says so.
    """
    exp = load_experiment(exp_dir)
    target = Path(out).expanduser() if out else default_output(exp.path)
    html = render(exp, build_gallery(exp) if gallery else Gallery(exp.best_trial_id or "", [],
                                                                  ["gallery skipped (--no-gallery)"]))
    _write(target, html)
    return target


def write_reports(exp_dir: str | Path, gallery: bool = True) -> list[Path]:
    """The report where the experiment keeps it (``ExperimentLayout.report``, which the README points to),
    built once, and its copy in ``reports/<experiment>.html`` under the current folder; the paths written.

    An experiment folder that cannot be written (read-only, a mirror) keeps its old report: then the
    copy is written alone, with a warning; a copy that cannot be written is a warning too.
    """
    inside = ExperimentLayout(Path(exp_dir).expanduser()).report
    copy = default_output(exp_dir)
    try:
        written = [build_report(exp_dir, inside, gallery)]
    except ReportError as err:
        if inside.parent.is_dir() and os.access(inside.parent, os.W_OK):
            raise
        print(f"warning: {err}; writing {copy} only", file=sys.stderr)
        return [build_report(exp_dir, copy, gallery)]
    try:
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(inside, copy)
    except OSError as err:  # a read-only working directory: the report in the experiment folder is the one
        print(f"warning: no copy of the report in {copy.parent} ({err.strerror or err})", file=sys.stderr)
        return written
    return [*written, copy]


def render(exp: Experiment, gallery: Gallery) -> str:
    page = Page()
    families, trials = compare.family_rows(exp), compare.trial_rows(exp)
    colours = figures.family_colours([r.family for r in families])
    scores = generalisation.load(exp)
    spread = page.figure(literature.distribution_figure(exp, scores)) if scores else ""
    body = [
        sections.header(exp, headline(exp, families[0] if families else None, scores)),
        strategy.summary(exp.strategy, exp.not_started, exp.trials, exp.best_trial_id), sections.notes(exp.notes),
        page.section("comparison", "Model comparison",
                     table.comparison(families, trials, exp.best_trial_id)
                     + "<h3>Beside the notebook</h3>" + sections.notebook(families), "Models"),
        page.section("generalisation", "Generalisation: test and external sets",
                     generalisation.table(exp, spread) + "<h3>In the literature's layout</h3>"
                     + literature.literature_table(exp, scores), "Generalisation"),
        page.section("ranking", "Is the ranking real?",
                     sections.ranking(compare.ranking(exp), {r.trial_id: r.test_dice for r in trials})),
        page.section("pick", "Is the pick real?", cross_validation.pick_real(exp)),
        *([page.section("cross-validation", "Cross-validation of the top configurations",
                        cross_validation.section(exp), "Cross-validation")] if cross_validation.wanted(exp) else []),
        page.section("progress", "Search progress", _progress(exp, page)),
        page.section("curves", "Learning curves", page.figure(figures.learning_curves(exp, colours))),
        page.section("hyperparameters", "Hyperparameters", _hyperparameters(exp, page)),
        page.section("gallery", "Best model's test images", _gallery(exp, page, gallery, colours),
                     "Best model's images"),
        page.section("reproducibility", "Reproducibility", sections.reproducibility(exp)),
    ]
    return page.render(f"polyp-ray: {exp.name}", "".join(body))


def _progress(exp: Experiment, page: Page) -> str:
    found = progress.search_progress(exp)
    return progress.summary(found, exp.metric) + page.figure(progress.figure(found, exp.metric))


def _hyperparameters(exp: Experiment, page: Page) -> str:
    lines = page.figure(figures.parallel_coordinates(exp), "No parallel-coordinates plot: the search space "
                        "could not be read or no trial has a validation score.")
    importance = param_importance(exp)
    bars = page.figure(figures.importance_bars(importance)) if importance.scores else ""
    return lines + sections.importance(importance, bars)


def _gallery(exp: Experiment, page: Page, gallery: Gallery, colours: dict[str, str]) -> str:
    scatter = page.figure(figures.dice_vs_size(exp, compare.family_best(exp), colours))
    return sections.gallery(gallery, scatter)


def _write(target: Path, html: str) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(target)  # a browser with the old report open never sees half a file
    except OSError as err:
        raise ReportError(f"{target}: cannot write the report ({err.strerror or err})") from None
