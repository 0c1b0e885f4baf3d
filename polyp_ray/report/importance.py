"""Hyperparameter importance: Optuna's fANOVA on an in-memory study rebuilt from the finished trials.

Conditional parameters (``when:`` in the space) are sampled by only some trials; fANOVA needs every
parameter in every trial, so those are left out and named in the page instead of silently vanishing.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import optuna

from polyp_ray.report.experiment import Experiment
from polyp_ray.searchspace import Param

Point = tuple[dict[str, Any], float]  # a trial's sampled parameters and its best score


@dataclass(frozen=True)
class Importance:
    scores: dict[str, float]  # parameter -> importance, largest first; empty when not computed
    reason: str = ""  # why there are no scores
    left_out: list[str] = field(default_factory=list)  # conditional parameters not in every trial


def param_importance(exp: Experiment) -> Importance:
    if exp.space is None:
        return Importance({}, f"the search space could not be read ({exp.space_problem})")
    searched = {p.name: p for p in exp.space.params if p.kind != "fixed"}
    points = _scored_points(exp, searched)
    if len(points) < 2:
        return Importance({}, f"needs at least 2 trials with a {exp.metric}; this search has {len(points)}")
    common = [n for n in searched if all(n in params for params, _ in points)]
    left_out = [n for n in searched if n not in common]
    varied = [n for n in common if len({repr(params[n]) for params, _ in points}) > 1]
    if not varied:
        return Importance({}, "no searched parameter took more than one value", left_out)
    try:
        scores = _fanova(points, {n: searched[n] for n in varied}, exp.maximise)
    except Exception as err:  # noqa: BLE001 - Optuna's evaluators raise many types; the page says why
        return Importance({}, f"Optuna could not compute it ({type(err).__name__}: {err})", left_out)
    return Importance(scores, "", left_out)


def distribution(param: Param) -> optuna.distributions.BaseDistribution:
    if param.kind == "categorical":
        return optuna.distributions.CategoricalDistribution(list(param.choices))
    if param.kind == "int":
        return optuna.distributions.IntDistribution(int(param.low), int(param.high), log=param.log,
                                                    step=int(param.step or 1))
    return optuna.distributions.FloatDistribution(float(param.low), float(param.high), log=param.log,
                                                  step=None if param.step is None else float(param.step))


def _scored_points(exp: Experiment, searched: dict[str, Param]) -> list[Point]:
    column = f"best_{exp.metric}"
    points = []
    for _, row in exp.trials.iterrows():
        value = row.get(column)
        if value is None or not math.isfinite(float(value)):
            continue
        params = exp.params.get(str(row["trial_id"]), {})
        points.append(({k: v for k, v in params.items() if k in searched}, float(value)))
    return points


def _fanova(points: list[Point], params: dict[str, Param], maximise: bool) -> dict[str, float]:
    distributions = {name: distribution(p) for name, p in params.items()}
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study created" line in the CLI output
    try:
        study = optuna.create_study(direction="maximize" if maximise else "minimize")
    finally:
        optuna.logging.set_verbosity(verbosity)
    for values, score in points:
        chosen = {n: _coerce(values[n], params[n]) for n in params}
        study.add_trial(optuna.trial.create_trial(params=chosen, distributions=distributions, value=score))
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    with warnings.catch_warnings():  # ExperimentalWarning and sklearn chatter; the page is the output
        warnings.simplefilter("ignore")
        scores = optuna.importance.get_param_importances(study, evaluator=evaluator, params=list(params))
    return dict(sorted(scores.items(), key=lambda kv: -kv[1]))


def _coerce(value: Any, param: Param) -> Any:
    """A value as its distribution expects it (CSV fallbacks read 8 as 8.0, choices may be ints)."""
    if param.kind == "categorical":
        return next((c for c in param.choices if c == value or str(c) == str(value)), value)
    return int(value) if param.kind == "int" else float(value)
