"""The polyp literature's comparison table (PraNet's Table 1 layout: per test set mDice, mIoU, F^w_beta,
S_alpha, mean E_phi, max E_phi, MAE) and the per-set distribution of each model's per-image Dice, both
from ``generalisation.json``."""

from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go

from polyp_ray.metrics import LITERATURE, METRICS
from polyp_ray.report.experiment import Experiment
from polyp_ray.report.figures import LAYOUT, PALETTE
from polyp_ray.report.generalisation import set_label
from polyp_ray.report.markup import esc, fmt, note
from polyp_ray.report.sections import caption

CAPTION = (
    "The layout of the polyp literature's comparison tables (PraNet, MICCAI 2020, Table 1): per test set, "
    "mean per-image Dice and IoU, weighted F-measure F^w_β, S-measure S_α, E-measure E_φ averaged over "
    "thresholds and at the best threshold, and MAE (lower is better), each image scored at its original "
    "resolution (docs/literature.md maps the columns to PraNet's). Bold: the best value of a column."
)


def literature_table(exp: Experiment, body: dict[str, Any] | None) -> str:
    if body is None or not body.get("rows"):
        return note("No literature table: the search scored no model on its test and external sets.")
    sets = list(body.get("sets") or {})
    rows = body["rows"]
    best = {(name, key): _best([_value(r, name, key) for r in rows], METRICS[key].mode)
            for name in sets for key in LITERATURE}
    top = "".join(f'<th colspan="{len(LITERATURE)}" scope="colgroup">{esc(set_label(exp, name))}</th>' for name in sets)
    sub = "".join(f'<th scope="col" title="{esc(METRICS[k].text)}">{esc(_short(k))}</th>'
                  for _ in sets for k in LITERATURE)
    lines = []
    for row in rows:
        cells = "".join(_cell(_value(row, name, key), best[(name, key)]) for name in sets for key in LITERATURE)
        lines.append(f"<tr><th scope=\"row\">{esc(row.get('label', '?'))}</th>{cells}</tr>")
    return (f'<div class="scroll"><table class="literature plain"><thead><tr><th rowspan="2">model</th>{top}</tr>'
            f"<tr>{sub}</tr></thead><tbody>{''.join(lines)}</tbody></table></div>" + caption(CAPTION))


def distribution_figure(exp: Experiment, body: dict[str, Any] | None) -> go.Figure | None:
    """One box per model per set (the winner, the ensemble, each family's best; TTA rows left out)."""
    if body is None:
        return None
    fig = go.Figure()
    for i, row in enumerate(r for r in body.get("rows", []) if not r.get("tta")):
        xs, ys = [], []
        for name, values in (row.get("per_image_dice") or {}).items():
            xs += [esc(set_label(exp, name))] * len(values)
            ys += list(values)
        if ys:
            fig.add_trace(go.Box(x=xs, y=ys, name=esc(row.get("label", "?")), boxpoints="outliers",
                                 marker_color=PALETTE[i % len(PALETTE)],
                                 hovertemplate="%{x}<br>Dice %{y:.3f}<extra></extra>"))
    if not fig.data:
        return None
    fig.update_layout(**LAYOUT, boxmode="group", title="Per-image Dice per set (box: quartiles; line: median)")
    fig.update_yaxes(title="Dice", range=[-0.03, 1.03])
    return fig


def _short(key: str) -> str:
    return {"dice": "mDice", "iou": "mIoU"}.get(key, METRICS[key].label)


def _value(row: dict[str, Any], name: str, key: str) -> float:
    try:
        return float((row.get("sets") or {}).get(name, {}).get(key))
    except (TypeError, ValueError):
        return math.nan


def _best(values: list[float], mode: str) -> float:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return math.nan
    return max(finite) if mode == "max" else min(finite)


def _cell(value: float, best: float) -> str:
    text = fmt(value)
    return f"<td><b>{text}</b></td>" if not math.isnan(value) and value == best else f"<td>{text}</td>"
