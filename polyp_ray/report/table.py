"""The model-comparison table: one row per family, one per trial, sortable and filterable in the page.

Every trial's row is in the file (the page opens offline and searching it needs no server), but only the
best ``TOP_ROWS`` by the search's metric are shown until the reader filters or asks for all of them: a
2,000-trial search otherwise makes a table tens of thousands of pixels tall.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from polyp_ray.metrics import FAILURE_DICE, METRICS, STRUCTURE
from polyp_ray.report.comparison import Row
from polyp_ray.report.markup import cell, esc, fmt, fmt_int
from polyp_ray.stats import Interval

TOP_ROWS = 20

CAPTION = (
    "Click a header to sort (families and trials sort separately); the filter matches any text of a row "
    "(a family, an encoder, a trial id, ERROR), and the table shows the first {top} trials of the order "
    "unless you show them all. A family row shows its best trial by "
    "validation score, with wall time and CPU/GPU-hours summed over all its trials. Validation scores are "
    "the best epoch's, measured during the search (only their means are recorded, so they carry no "
    "interval); test scores evaluate each trial's best checkpoint, with "
    "95% percentile-bootstrap intervals over test images (they cover image sampling, not training "
    "randomness). Dice and IoU are per image, averaged over images; an image with no polyp and no "
    "prediction scores 1. Under each test Dice: the median, the share of images that failed (Dice below "
    "0.1) and the share of images with a polyp on which the model predicted nothing. F^w_β, S_α, E_φ and "
    "MAE are the polyp literature's structure metrics (PraNet's Table 1) on the probability map at each "
    "image's original resolution; MAE is better when lower."
)

# Sorts each <tbody> of a table.sortable on its own, by each cell's data-sort; a header's data-type says
# whether its column compares as numbers or as text (trial ids like "1225e266" look numeric). Empty last.
# Then shows the rows that match the filter, only the first data-top trials of them unless "show all"
# is pressed. Listeners are attached here: the page's Content-Security-Policy forbids inline handlers.
SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.querySelectorAll("thead th");
  var top = Number(table.getAttribute("data-top")) || Infinity;
  var filter = document.querySelector('input[data-filters="' + table.id + '"]');
  var button = document.querySelector('button[data-shows-all="' + table.id + '"]');
  var count = document.querySelector('[data-counts="' + table.id + '"]');
  var all = false;
  function refresh() {
    var words = filter ? filter.value.toLowerCase().trim() : "";
    var shown = 0, matched = 0;
    table.querySelectorAll("tbody").forEach(function (body) {
      var trials = body.classList.contains("trials");
      Array.prototype.forEach.call(body.rows, function (row) {
        var match = !words || row.textContent.toLowerCase().indexOf(words) >= 0;
        var visible = match && (!trials || all || matched < top);
        if (trials && match) { matched++; }
        if (trials && visible) { shown++; }
        row.hidden = !visible;
      });
    });
    if (count) {
      count.textContent = "Showing " + shown + " of " + matched + (words ? " matching" : "") + " trials.";
    }
    if (button) {
      button.textContent = all ? "Show the first " + top : "Show all " + matched;
      button.setAttribute("aria-pressed", all ? "true" : "false");
    }
  }
  function key(row, i) {
    var c = row.children[i];
    return c.hasAttribute("data-sort") ? c.getAttribute("data-sort") : c.textContent;
  }
  function compare(x, y, numeric) {
    if (x === "" || y === "") { return x === y ? 0 : (x === "" ? 1 : -1); }
    return numeric ? Number(x) - Number(y) : x.localeCompare(y);
  }
  function sortBy(i, th) {
    var up = th.getAttribute("aria-sort") !== "ascending";
    var numeric = th.getAttribute("data-type") === "num";
    heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", up ? "ascending" : "descending");
    table.querySelectorAll("tbody").forEach(function (body) {
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = key(a, i), y = key(b, i);
        if (x === "" || y === "") { return compare(x, y, numeric); }
        return up ? compare(x, y, numeric) : compare(y, x, numeric);
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
    refresh();
  }
  heads.forEach(function (th, i) {
    th.addEventListener("click", function () { sortBy(i, th); });
    th.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(i, th); }
    });
  });
  if (filter) { filter.addEventListener("input", refresh); }
  if (button) { button.addEventListener("click", function () { all = !all; refresh(); }); }
  refresh();
});
"""

Column = tuple[str, str, Callable[[Row], str]]  # header, tooltip, the row's <td>
TEXT_COLUMNS = {"family / trial", "family"}


def ci(value: Interval) -> str:
    if not value.defined:
        return "–"
    return f"{value.mean:.3f}<br><small>[{value.low:.3f}, {value.high:.3f}]</small>"


def failures(rates: dict[str, Any]) -> str:
    """What a mean hides, under it: the median, the share of failed images, the empty predictions."""
    if not rates or rates.get("median") is None:
        return ""
    empty = rates.get("empty_predictions")
    empty_text = "–" if empty is None or _nan(empty) else f"{float(empty):.0%}"
    return (f'<br><small class="rates">median {fmt(float(rates["median"]))} · '
            f'{float(rates.get("failures", math.nan)):.0%} below {FAILURE_DICE} · {empty_text} empty</small>')


def _nan(value: Any) -> bool:
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return True


def _structure(name: str) -> Column:
    metric = METRICS[name]
    return (f"test {metric.label}", metric.text, lambda r: cell(fmt(r.test_structure.get(name, math.nan)),
                                                             r.test_structure.get(name, math.nan)))


COLUMNS: list[Column] = [
    ("family / trial", "model family, or trial id", lambda r: cell(_label(r), r.label)),
    ("family", "", lambda r: cell(esc(r.family), r.family)),
    ("val Dice", "best validation per-image Dice", lambda r: cell(fmt(r.val_dice), r.val_dice)),
    ("val IoU", "validation per-image IoU at that epoch", lambda r: cell(fmt(r.val_iou), r.val_iou)),
    ("test Dice [95% CI]", f"per-image mean, bootstrap over test images; median, share of images below Dice "
     f"{FAILURE_DICE}, share of empty predictions on images with a polyp",
     lambda r: cell(ci(r.test_dice) + failures(r.test_rates), r.test_dice.mean)),
    ("test IoU [95% CI]", "", lambda r: cell(ci(r.test_iou), r.test_iou.mean)),
    ("2-class mIoU", "the notebook's metric: pooled confusion matrix over the test split",
     lambda r: cell(fmt(r.test_miou), r.test_miou)),
    *(_structure(name) for name in STRUCTURE),
    ("params", "weights, frozen included", lambda r: cell(fmt_int(r.n_params), r.n_params, "num")),
    ("image", "input side in pixels", lambda r: cell(fmt_int(r.image_size), r.image_size, "num")),
    ("batch", "", lambda r: cell(fmt_int(r.batch_size), r.batch_size, "num")),
    ("epochs", "epochs run (ASHA may stop a trial at a rung)",
     lambda r: cell(_epochs(r), r.epochs_run, "num")),
    ("wall time", "family rows: summed over the family's trials",
     lambda r: cell(_duration(r.wall_s), r.wall_s, "num")),
    ("CPU-h", "", lambda r: cell(fmt(r.cpu_hours, 4), r.cpu_hours, "num")),
    ("GPU-h", "", lambda r: cell(fmt(r.gpu_hours, 4), r.gpu_hours, "num")),
]


def comparison(families: list[Row], trials: list[Row], best_trial: str | None, top: int = TOP_ROWS) -> str:
    """The table; trial rows after the first ``top`` are in the file but hidden until asked for."""
    on_gpu = any(r.gpu_hours > 0 for r in [*families, *trials])  # a CPU-only search has no GPU-h column
    columns = [c for c in COLUMNS if on_gpu or c[0] != "GPU-h"]
    head = "".join(_head(name, tip) for name, tip, _ in columns)
    family_rows = "".join(_table_row(r, best_trial, columns) for r in families)
    trial_rows = "".join(_table_row(r, best_trial, columns, hidden=i >= top) for i, r in enumerate(trials))
    table = (f'<table id="model-table" class="sortable" data-top="{top}"><thead><tr>{head}</tr></thead>'
             f'<tbody class="families">{family_rows}</tbody><tbody class="trials">{trial_rows}</tbody></table>')
    shown = min(top, len(trials))
    more = (f'<button type="button" data-shows-all="model-table" aria-pressed="false">Show all {len(trials):,}'
            "</button>") if len(trials) > top else ""
    tools = (f'<div class="table-tools"><label>Filter rows <input type="search" data-filters="model-table" '
             f'placeholder="family, encoder, trial id ..." aria-label="Filter the table"></label>{more}'
             f'<span data-counts="model-table">Showing {shown} of {len(trials):,} trials.</span></div>')
    return tools + f'<div class="scroll">{table}</div>' + f'<p class="caption">{CAPTION.format(top=top)}</p>'


def _head(name: str, tip: str) -> str:
    kind = "text" if name in TEXT_COLUMNS else "num"
    return f'<th scope="col" title="{esc(tip)}" data-type="{kind}" tabindex="0">{esc(name)}</th>'


def _table_row(row: Row, best_trial: str | None, columns: list[Column], hidden: bool = False) -> str:
    classes = [row.kind] + (["best"] if row.trial_id == best_trial and row.kind == "family" else [])
    cells = "".join(render(row) for _, _, render in columns)
    return f'<tr class="{" ".join(classes)}"{" hidden" if hidden else ""}>{cells}</tr>'


def _label(row: Row) -> str:
    failed = f'<br><small class="error">test scoring failed: {esc(row.test_error)}</small>' if row.test_error else ""
    if row.kind == "family":
        trials = f"{row.n_trials} trial{'s' if row.n_trials != 1 else ''}"
        return f"<b>{esc(row.label)}</b><br><small>{trials}, best {esc(row.trial_id)}</small>{failed}"
    status = "" if row.status in ("TERMINATED", "") else f" <small>{esc(row.status)}</small>"
    return f"<code>{esc(row.label)}</code>{status}{failed}"


def _epochs(row: Row) -> str:
    text = fmt_int(row.epochs_run)
    return f"{text} <small>stopped</small>" if row.stopped_early and row.kind == "trial" else text


def _duration(seconds: float) -> str:
    if math.isnan(seconds):
        return "–"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"
