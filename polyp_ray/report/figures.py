"""The report's plotly figures. Plotly renders names, titles and hover text as a subset of HTML, so
every string from the experiment is escaped here; hover templates are our own constant strings and the
experiment's strings travel in ``customdata``, which plotly does not template-expand.

All figures are SVG (no WebGL traces): they render in any browser, headless or without a GPU, and print.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative, sample_colorscale

from polyp_ray.report.experiment import Experiment
from polyp_ray.report.importance import Importance
from polyp_ray.report.markup import esc
from polyp_ray.report.rungs import asha_rungs
from polyp_ray.searchspace import Param

PALETTE = qualitative.D3
TOP_LINES = 20  # trials drawn one by one in the curves and the parallel coordinates; the rest are faded
SCALE = "Viridis"
LAYOUT: dict[str, Any] = {"template": "plotly_white", "height": 430,
                          "margin": {"l": 60, "r": 30, "t": 50, "b": 50},
                          "font": {"family": "system-ui, sans-serif", "size": 12}}


def family_colours(families: list[str]) -> dict[str, str]:
    return {f: PALETTE[i % len(PALETTE)] for i, f in enumerate(families)}


def learning_curves(exp: Experiment, colours: dict[str, str], top: int = TOP_LINES) -> go.Figure:
    """The best ``top`` trials in their family's colour, the best drawn last (on top); the others as one
    faded grey trace beneath them, where their overlap reads as a density."""
    fig = go.Figure()
    curves = [(str(row["trial_id"]), str(row["family"]), exp.histories[str(row["trial_id"])])
              for _, row in exp.trials.iterrows() if str(row["trial_id"]) in exp.histories]  # best first
    curves = [(t, f, h) for t, f, h in curves if "val_dice" in h and not h.empty]
    best, rest = curves[:top], curves[top:]
    if rest:
        xs, ys = _joined([(h["epoch"].tolist(), h["val_dice"].tolist()) for _, _, h in rest])
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=f"the other {len(rest):,} trials",
                                 line={"color": "rgba(110,110,110,0.12)", "width": 1}, hoverinfo="skip"))
    shown: set[str] = set()
    for rank, (trial_id, family, history) in reversed(list(enumerate(best))):
        fig.add_trace(_curve(trial_id, family, history, colours.get(family, "#888"), family not in shown,
                             2.5 if rank == 0 else 1.5))
        shown.add(family)
    _mark_stops(fig, exp, {t for t, _, _ in best})
    job = exp.job
    for rung in asha_rungs(int(job.get("grace_period", 1)), int(job.get("reduction_factor", 3)), exp.epochs):
        fig.add_vline(x=rung, line_dash="dash", line_color="#999",
                      annotation_text=f"ASHA rung {rung}", annotation_position="top")
    title = ("Validation Dice by epoch (every trial)" if not rest else
             f"Validation Dice by epoch: the best {len(best)} trials in colour, the other {len(rest):,} in grey")
    fig.update_layout(**LAYOUT, title=title, legend_title_text="model family")
    fig.update_xaxes(title="epoch", dtick=1, rangemode="tozero")
    fig.update_yaxes(title="validation Dice (per image)", range=[0, 1])
    return fig


def _joined(lines: list[tuple[list, list]]) -> tuple[list, list]:
    """Many polylines as one trace: None between them breaks the line (one SVG path, not thousands)."""
    xs: list = []
    ys: list = []
    for x, y in lines:
        xs += [*x, None]
        ys += [*y, None]
    return xs, ys


def _curve(trial_id: str, family: str, history, colour: str, legend: bool, width: float) -> go.Scatter:
    label = f"{esc(trial_id)} ({esc(family)})"
    return go.Scatter(
        x=history["epoch"].tolist(), y=history["val_dice"].tolist(), mode="lines+markers",
        name=esc(family), legendgroup=esc(family), showlegend=legend, line={"color": colour, "width": width},
        marker={"size": 5}, customdata=[label] * len(history),
        hovertemplate="trial %{customdata}<br>epoch %{x}: val Dice %{y:.3f}<extra></extra>",
    )


def _mark_stops(fig: go.Figure, exp: Experiment, drawn: set[str]) -> None:
    """An x where ASHA stopped a drawn trial early: its last reported epoch."""
    xs, ys, labels = [], [], []
    for _, row in exp.trials.iterrows():
        if str(row["trial_id"]) not in drawn:
            continue
        history = exp.histories.get(str(row["trial_id"]))
        if str(row.get("stopped_early", "")).lower() != "true" or history is None or history.empty:
            continue
        if "val_dice" not in history:
            continue
        xs.append(int(history["epoch"].iloc[-1]))
        ys.append(float(history["val_dice"].iloc[-1]))
        labels.append(esc(row["trial_id"]))
    if xs:
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name="stopped by ASHA", customdata=labels,
                                 marker={"symbol": "x", "size": 10, "color": "#222"},
                                 hovertemplate="trial %{customdata} stopped after epoch %{x}<extra></extra>"))


def parallel_coordinates(exp: Experiment, top: int = TOP_LINES, bins: int = 5) -> go.Figure | None:
    """Hyperparameters against the best validation score, as SVG lines: the best ``top`` trials one by one
    (hover names them), the best drawn last; the rest faded beneath, one trace per score quantile."""
    axes = _axes(exp)
    column = f"best_{exp.metric}"
    rows = [r for _, r in exp.trials.iterrows() if _finite(r.get(column))]  # best first
    if not axes or not rows:
        return None
    scores = np.array([float(r[column]) for r in rows])
    low, high = float(scores.min()), float(scores.max())
    lines = [[_position(p, exp.params.get(str(r["trial_id"]), {}).get(p.name)) for p in axes]
             + [_unit(score, low, high)] for r, score in zip(rows, scores, strict=True)]
    fig = go.Figure()
    rest = np.arange(top, len(rows))
    for chunk in np.array_split(rest[::-1], min(bins, len(rest))) if len(rest) else []:  # worst first
        colour = sample_colorscale(SCALE, [_unit(float(scores[chunk].mean()), low, high)])[0]
        xs, ys = _joined([(list(range(len(lines[i]))), lines[i]) for i in chunk])
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", showlegend=False, hoverinfo="skip", opacity=0.25,
                                 line={"color": colour, "width": 1}))
    for i in reversed(range(min(top, len(rows)))):
        row, ys = rows[i], lines[i]
        colour = sample_colorscale(SCALE, [_unit(float(scores[i]), low, high)])[0]
        text = f"{esc(row['trial_id'])} ({esc(row['family'])}): {exp.metric} {scores[i]:.3f}"
        fig.add_trace(go.Scatter(x=list(range(len(ys))), y=ys, mode="lines+markers", showlegend=False,
                                 line={"color": colour, "width": 2}, marker={"size": 4, "color": colour},
                                 customdata=[text] * len(ys), hovertemplate="%{customdata}<extra></extra>"))
    _colourbar(fig, low, high, exp.metric)
    _draw_axes(fig, axes, [exp.params.get(str(r["trial_id"]), {}) for r in rows], low, high, exp.metric)
    if len(rest):
        fig.update_layout(title=f"Hyperparameters against the best validation score: the best {top} trials, "
                                f"the other {len(rest):,} faded")
    return fig


def _axes(exp: Experiment) -> list[Param]:
    if exp.space is None:
        return []
    # A one-choice parameter is a flat line through every trial: no information, only clutter.
    return [p for p in exp.space.params if p.kind in ("int", "float") or len(p.choices) > 1]


def _position(param: Param, value: Any) -> float:
    """Where a value sits on its axis, 0..1; -0.12 for a conditional parameter this trial did not sample."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return -0.12
    if param.kind == "categorical":
        index = next((i for i, c in enumerate(param.choices) if c == value or str(c) == str(value)), 0)
        return index / (len(param.choices) - 1) if len(param.choices) > 1 else 0.5
    low, high, x = float(param.low), float(param.high), float(value)
    if param.log:
        low, high, x = math.log10(low), math.log10(high), math.log10(max(x, 1e-300))
    return _unit(x, low, high)


def _unit(x: float, low: float, high: float) -> float:
    return 0.5 if high <= low else min(1.0, max(0.0, (x - low) / (high - low)))


def _ticks(param: Param) -> list[tuple[float, str]]:
    if param.kind == "categorical":
        n = len(param.choices)
        return [(i / (n - 1) if n > 1 else 0.5, esc(c)) for i, c in enumerate(param.choices)]
    return [(0.0, _number(param.low)), (1.0, _number(param.high))]


def _number(value: float) -> str:
    return f"{value:.0e}" if 0 < abs(value) < 1e-2 else f"{value:g}"


def _draw_axes(fig: go.Figure, axes: list[Param], sampled: list[dict[str, Any]], low: float, high: float,
               metric: str) -> None:
    labels = [esc(p.name) for p in axes] + [f"best {esc(metric)}"]
    ticks = [_ticks(p) for p in axes] + [[(0.0, f"{low:.3f}"), (1.0, f"{high:.3f}")]]
    conditional = [any(p.name not in params for params in sampled) for p in axes] + [False]
    for i, (label, marks) in enumerate(zip(labels, ticks, strict=True)):
        fig.add_shape(type="line", x0=i, x1=i, y0=0, y1=1, line={"color": "#444", "width": 1})
        fig.add_annotation(x=i, y=1.08, text=f"<b>{label}</b>", showarrow=False)
        for y, text in marks + ([(-0.12, "not sampled")] if conditional[i] else []):
            fig.add_annotation(x=i, y=y, text=text, showarrow=False, xanchor="left", xshift=4,
                               font={"size": 10, "color": "#333"}, bgcolor="rgba(255,255,255,0.85)")
    fig.update_layout(**{**LAYOUT, "height": 460}, title="Hyperparameters against the best validation score",
                      hovermode="closest")
    fig.update_xaxes(visible=False, range=[-0.3, len(labels) - 0.4])
    fig.update_yaxes(visible=False, range=[-0.2, 1.15])


def _colourbar(fig: go.Figure, low: float, high: float, metric: str) -> None:
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", showlegend=False, hoverinfo="skip",
                             marker={"colorscale": SCALE, "cmin": low, "cmax": high, "color": [low],
                                     "showscale": True, "colorbar": {"title": {"text": esc(metric)}}}))


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def importance_bars(importance: Importance) -> go.Figure:
    names = list(importance.scores)[::-1]  # plotly draws the first bar at the bottom
    fig = go.Figure(go.Bar(x=[importance.scores[n] for n in names], y=[esc(n) for n in names],
                           orientation="h", marker_color=PALETTE[0],
                           hovertemplate="%{y}: %{x:.2f}<extra></extra>"))
    fig.update_layout(**{**LAYOUT, "height": 120 + 40 * len(names)},
                      title="Hyperparameter importance (fANOVA, share of the variance of the best score)")
    fig.update_xaxes(title="importance", range=[0, 1])
    return fig


def dice_vs_size(exp: Experiment, best: dict[str, str], colours: dict[str, str]) -> go.Figure | None:
    """Per-image test Dice against the polyp's share of the image, one trace per family's best trial."""
    fig = go.Figure()
    for family, trial_id in best.items():
        rows = exp.tests.get(trial_id, {}).get("per_image", [])
        if not rows:
            continue
        fig.add_trace(go.Scatter(
            x=[r.get("truth_fraction") for r in rows], y=[r.get("dice") for r in rows], mode="markers",
            name=f"{esc(family)} (trial {esc(trial_id)})",  # every family shown: a click hides one
            marker={"color": colours.get(family, "#888"), "size": 7, "opacity": 0.75},
            customdata=[esc(r.get("stem", "")) for r in rows],
            hovertemplate="%{customdata}<br>polyp area %{x:.1%}<br>Dice %{y:.3f}<extra></extra>",
        ))
    if not fig.data:
        return None
    fig.update_layout(**LAYOUT, title="Test Dice against polyp size (each family's best trial)")
    fig.update_xaxes(title="polyp share of the image (truth)", tickformat=".0%", rangemode="tozero")
    fig.update_yaxes(title="Dice", range=[-0.03, 1.03])
    return fig
