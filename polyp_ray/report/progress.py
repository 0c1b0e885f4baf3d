"""Search progress: the best validation score found so far against wall time and against the CPU/GPU-hours
spent, and how many trials ASHA let reach each rung. The questions behind it: would a longer (or shorter)
search have found a better model, and where did the compute go?

Every epoch of every trial is an event at Tune's ``timestamp`` (result.json); the compute it cost is its
``time_total_s`` increment times the CPUs and GPUs the trial held (trials.csv's ``cpu``, ``gpu``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from polyp_ray.experiment import TUNE_RESULT
from polyp_ray.report.experiment import Experiment
from polyp_ray.report.markup import esc
from polyp_ray.report.rungs import asha_rungs


@dataclass(frozen=True)
class Progress:
    """The best-so-far curve (only the points where it changes, and the last) and the rung counts."""

    hours: np.ndarray  # wall time since the search started
    cpu_hours: np.ndarray  # CPU-hours spent on finished epochs by then
    gpu_hours: np.ndarray
    best: np.ndarray  # the best score of any epoch so far
    rungs: dict[int, int] = field(default_factory=dict)  # epoch -> trials that reached it
    trials: int = 0

    @property
    def timed(self) -> bool:
        return len(self.best) > 0


def search_progress(exp: Experiment) -> Progress:
    rungs = _rung_counts(exp)
    events = _events(exp)
    if events.empty:
        empty = np.array([])
        return Progress(empty, empty, empty, empty, rungs, len(exp.trials))
    events = events.sort_values("timestamp", kind="stable")
    best = events["value"].cummax() if exp.maximise else events["value"].cummin()
    start = float((events["timestamp"] - events["time_total_s"]).min())
    frame = pd.DataFrame({"hours": (events["timestamp"] - start) / 3600, "cpu": events["cpu_h"].cumsum(),
                          "gpu": events["gpu_h"].cumsum(), "best": best})
    keep = (frame["best"] != frame["best"].shift()).to_numpy(copy=True)
    keep[-1] = True  # the curve runs on to the end of the search
    frame = frame[keep]
    return Progress(frame["hours"].to_numpy(), frame["cpu"].to_numpy(), frame["gpu"].to_numpy(),
                    frame["best"].to_numpy(), rungs, len(exp.trials))


def _events(exp: Experiment) -> pd.DataFrame:
    """One row per epoch of every trial that has Tune's timestamps: when, its score, its compute."""
    needed = ("timestamp", "time_total_s", exp.metric)
    held = exp.trials.set_index("trial_id")
    columns: dict[str, list[np.ndarray]] = {k: [] for k in ("timestamp", "time_total_s", "value", "cpu_h", "gpu_h")}
    for trial_id, history in exp.histories.items():  # plain arrays: a DataFrame per trial costs seconds
        try:
            stamp, spent, value = (np.asarray(history[key], dtype=np.float64) for key in needed)
        except (KeyError, TypeError, ValueError):  # an older Tune, or a trial without scores
            continue
        hours = np.diff(spent, prepend=0.0) / 3600
        for key, array in (("timestamp", stamp), ("time_total_s", spent), ("value", value),
                           ("cpu_h", hours * _held(held, trial_id, "cpu")),
                           ("gpu_h", hours * _held(held, trial_id, "gpu"))):
            columns[key].append(array)
    if not columns["value"]:
        return pd.DataFrame()
    return pd.DataFrame({k: np.concatenate(v) for k, v in columns.items()}).dropna()


def _held(table: pd.DataFrame, trial_id: str, key: str) -> float:
    try:
        value = float(table.at[trial_id, key])
    except (KeyError, TypeError, ValueError):
        return 0.0
    return 0.0 if math.isnan(value) else value


def _rung_counts(exp: Experiment) -> dict[int, int]:
    job = exp.job
    epochs = asha_rungs(int(job.get("grace_period", 1)), int(job.get("reduction_factor", 3)), exp.epochs)
    if "epochs_run" in exp.trials:
        run = pd.to_numeric(exp.trials["epochs_run"], errors="coerce").fillna(0).to_numpy()
    else:
        run = np.array([len(h) for h in exp.histories.values()])
    return {e: int((run >= e).sum()) for e in [*epochs, exp.epochs]}


def figure(progress: Progress, metric: str) -> go.Figure:
    timed = progress.timed
    titles = ([f"best {esc(metric)} so far against wall time", "... against compute spent"] if timed else [])
    fig = make_subplots(rows=1, cols=3 if timed else 1, subplot_titles=[*titles, "trials reaching each epoch"],
                        column_widths=[0.37, 0.37, 0.26] if timed else None)
    if timed:
        step = {"mode": "lines", "line_shape": "hv"}
        hover = "%{x:.2f} h: best %{y:.3f}<extra></extra>"
        fig.add_trace(go.Scatter(x=progress.hours, y=progress.best, name="wall time", line={"color": "#1f77b4"},
                                 hovertemplate=hover, **step), row=1, col=1)
        fig.add_trace(go.Scatter(x=progress.cpu_hours, y=progress.best, name="CPU-hours",
                                 line={"color": "#2ca02c"}, hovertemplate="%{x:.2f} CPU-h: best %{y:.3f}"
                                 "<extra></extra>", **step), row=1, col=2)
        if progress.gpu_hours[-1] > 0:
            fig.add_trace(go.Scatter(x=progress.gpu_hours, y=progress.best, name="GPU-hours",
                                     line={"color": "#d62728"}, hovertemplate="%{x:.2f} GPU-h: best %{y:.3f}"
                                     "<extra></extra>", **step), row=1, col=2)
        fig.update_xaxes(title_text="hours since the search started", row=1, col=1)
        compute = "CPU-hours / GPU-hours" if progress.gpu_hours[-1] > 0 else "CPU-hours"  # no GPU: no GPU axis
        fig.update_xaxes(title_text=compute, row=1, col=2)
        fig.update_yaxes(title_text=f"best validation {esc(metric)}", row=1, col=1)
    epochs = list(progress.rungs)
    fig.add_trace(go.Bar(x=[f"epoch {e}" for e in epochs], y=[progress.rungs[e] for e in epochs],
                         text=[f"{progress.rungs[e]:,}" for e in epochs], textposition="outside",
                         marker_color="#7f7f7f", showlegend=False,
                         hovertemplate="%{y} trials reached %{x}<extra></extra>"), row=1, col=3 if timed else 1)
    fig.update_layout(template="plotly_white", height=400, margin={"l": 60, "r": 30, "t": 60, "b": 50},
                      font={"family": "system-ui, sans-serif", "size": 12}, title="Search progress",
                      legend={"orientation": "h", "y": -0.2})
    return fig


def summary(progress: Progress, metric: str) -> str:
    """The figure in a sentence (our own markup; the metric name is escaped)."""
    reached = ", ".join(f"{n:,} reached epoch {e}" for e, n in progress.rungs.items())
    rungs = f"Of {progress.trials:,} trials, {reached} (ASHA's rungs, then the full budget)."
    if not progress.timed:
        return f"<p>{rungs} No per-epoch timestamps in the trials' {TUNE_RESULT}, so no progress over time.</p>"
    final = progress.best[-1]
    first = int(np.argmax(progress.best == final))
    gpu = (f", {_part(progress.gpu_hours[first], progress.gpu_hours[-1], 'GPU-')}"
           if progress.gpu_hours[-1] > 0 else "")
    wall = _part(progress.hours[first], progress.hours[-1], "", " of the search's")
    return (f"<p>The best validation {esc(metric)}, {final:.3f}, was first reached after {wall} "
            f"({_part(progress.cpu_hours[first], progress.cpu_hours[-1], 'CPU-')}{gpu}). {rungs}</p>")


def _part(value: float, total: float, kind: str, of: str = " of") -> str:
    """E.g. "12 of the search's 40 minutes": minutes below 2 hours (0.0 of 0.2 hours says nothing), else hours."""
    if total < 2:
        return f"{value * 60:.0f}{of} {total * 60:.0f} {kind}minutes"
    return f"{value:.1f}{of} {total:.1f} {kind}hours"
