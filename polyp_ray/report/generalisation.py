"""The generalisation table: the winner, each family's best and the ensemble on the in-domain test split
beside every external test set (``generalisation.json``, written by the search)."""

from __future__ import annotations

import math
from typing import Any

from polyp_ray.report.experiment import Experiment, read_table_body
from polyp_ray.report.markup import esc, fmt, note
from polyp_ray.report.sections import caption
from polyp_ray.report.table import ci, failures
from polyp_ray.stats import ALPHA, Interval

CAPTION = (
    "Per-image Dice at each image's original resolution, mean with its 95% bootstrap CI over images. "
    "The <b>(test split)</b> column is the held-out split of the search's own dataset; every other column is "
    "an external set that no trial trained on and no choice was made with, so the fall from the test split to it "
    "is the "
    "domain gap a user should expect on another centre's data. Under each mean: the median, the share of "
    "images that failed (Dice below 0.1) and the share of images with a polyp on which the model predicted "
    "nothing: a mean of 0.3 may be half the images found and half missed. Ensemble and TTA rows also give "
    "their paired difference from the winner on the same images (bootstrap CI; Wilcoxon p). The plot "
    "beside shows each model's per-image Dice per set."
)


def load(exp: Experiment) -> dict[str, Any] | None:
    return read_table_body(exp.layout.generalisation, "rows")


def set_label(exp: Experiment, name: str) -> str:
    """What a column is: the dataset's name (its folder's, for the search's own test split), never a layout."""
    if name != "test":
        return name
    root = str(exp.dataset.get("root") or "").rstrip("/")
    return f"{root.rsplit('/', 1)[-1] or 'dataset'} (test split)"


def table(exp: Experiment, figure: str = "") -> str:
    """The table, and beside it ``figure`` (the per-set distribution plot)."""
    body = load(exp)
    if body is None:
        return note(f"No generalisation scores: the search wrote no {exp.layout.generalisation.name} (an "
                    "experiment from before this table, or no trial's checkpoint could be scored).")
    sets = list(body.get("sets") or {})
    head = "".join(f"<th>{esc(set_label(exp, name))}<br><small>{esc(_set_note(body['sets'][name]))}</small></th>"
                   for name in sets)
    rows = "".join(_row(row, sets) for row in body["rows"])
    external = [s for s in sets if s != "test"]
    hint = "" if external else note("No external test set: list some under data.external_tests in the job to "
                                    "see how the models do on another centre's images.")
    return (f'<div class="beside"><table class="generalisation"><thead><tr><th>model</th><th>trials</th>{head}'
            f"</tr></thead><tbody>{rows}</tbody></table>{figure}</div>" + caption(CAPTION) + hint)


def _set_note(info: dict[str, Any]) -> str:
    return f"{info.get('n_images', '?')} images" + (", external" if info.get("root") else "")


def _row(row: dict[str, Any], sets: list[str]) -> str:
    ids = row.get("trial_ids") or []
    trials = esc(", ".join(ids[:3]) + (f" +{len(ids) - 3}" if len(ids) > 3 else ""))
    cells = "".join(f"<td>{_cell(row.get('sets', {}).get(name))}</td>" for name in sets)
    return f'<tr class="{esc(row.get("kind", ""))}"><td>{esc(row.get("label", "?"))}</td><td>{trials}</td>{cells}</tr>'


def _cell(entry: dict[str, Any] | None) -> str:
    if not entry:
        return "–"
    text = ci(Interval(_num(entry.get("dice")), _num(entry.get("dice_low")), _num(entry.get("dice_high")),
                       int(entry.get("n") or 0))) + failures(entry)
    paired = entry.get("vs_winner")
    if paired:
        diff, low, high = (_num(paired.get(k)) for k in ("mean_difference", "low", "high"))
        p = paired.get("p_value")
        marker = " <b>*</b>" if p is not None and p < ALPHA and (low > 0 or high < 0) else ""
        text += (f"<br><small>vs winner {diff:+.3f} [{fmt(low)}, {fmt(high)}], "
                 f"p {'–' if p is None else f'{p:.3g}'}{marker}</small>")
    return text


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
