"""Hyperparameter importance: Optuna's fANOVA over the search's own stored Optuna study (its finished
trials, warm-start trials left out, with the exact distributions they were sampled from), or over the
trials of trials.csv where the experiment has no stored study (made before the study was kept).

fANOVA's cost grows faster than the number of trials (52 s of a 2,000-trial report), so it sees at most
``SAMPLE_SIZE`` trials: the best ``SAMPLE_BEST`` by the search's metric, where the question "what made
the good ones good" lives, and a seeded random sample of the rest, so the poor regions still count; the
page states the sample.

Conditional parameters (``when:`` in the space) are sampled by only some trials; fANOVA needs every
parameter in every trial, so those are left out and named in the page instead of silently vanishing.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna

from polyp_ray.errors import one_line
from polyp_ray.experiment import TRIALS_TABLE
from polyp_ray.report.experiment import Experiment
from polyp_ray.searchspace import Param
from polyp_ray.stored_study import load_stored_study

Point = tuple[dict[str, Any], float]  # a trial's sampled parameters and its best score
SAMPLE_SIZE, SAMPLE_BEST, SAMPLE_SEED = 400, 100, 0


@dataclass(frozen=True)
class Importance:
    scores: dict[str, float]  # parameter -> importance, largest first; empty when not computed
    reason: str = ""  # why there are no scores
    left_out: list[str] = field(default_factory=list)  # conditional parameters not in every trial
    used: int = 0  # trials fANOVA saw
    scored: int = 0  # trials with a score, of which ``used`` were sampled
    kept_best: int = 0  # of the ``used``: the best by the metric (the rest a seeded random sample)
    source: str = TRIALS_TABLE  # where the trials came from: the stored Optuna study, or trials.csv

    @property
    def sampled(self) -> bool:
        return self.used < self.scored


def param_importance(exp: Experiment) -> Importance:
    if exp.space is None:
        return Importance({}, f"the search space could not be read ({exp.space_problem})")
    searched = {p.name: p for p in exp.space.params if p.kind != "fixed"}
    stored = _stored_points(exp)
    scored = stored if stored is not None else _scored_points(exp, searched)
    source = TRIALS_TABLE if stored is None else "the search's Optuna study"
    if len(scored) < 2:
        return Importance({}, f"needs at least 2 trials with a {exp.metric}; this search has {len(scored)}")
    points = sample(scored, SAMPLE_SIZE, SAMPLE_BEST)
    counts: dict[str, Any] = {"used": len(points), "scored": len(scored),
                              "kept_best": min(SAMPLE_BEST, len(points)), "source": source}
    common = [n for n in searched if all(n in params for params, _ in points)]
    left_out = [n for n in searched if n not in common]
    varied = [n for n in common if len({repr(params[n]) for params, _ in points}) > 1]
    if not varied:
        return Importance({}, "no searched parameter took more than one value", left_out, **counts)
    try:
        scores = _fanova(points, {n: searched[n] for n in varied}, exp.maximise)
    except Exception as err:  # noqa: BLE001 - Optuna's evaluators raise many types; the page says why
        return Importance({}, f"Optuna could not compute it ({one_line(err)})", left_out, **counts)
    return Importance(scores, "", left_out, **counts)


def sample(points: list[Point], size: int = SAMPLE_SIZE, best: int = SAMPLE_BEST,
           seed: int = SAMPLE_SEED) -> list[Point]:
    """``points`` (best first) as they are if they fit in ``size``; else the ``best`` first and a seeded
    random ``size - best`` of the rest, in their original order."""
    if len(points) <= size:
        return points
    rest = np.random.default_rng(seed).choice(np.arange(best, len(points)), size - best, replace=False)
    return points[:best] + [points[i] for i in sorted(rest)]


def distribution(param: Param) -> optuna.distributions.BaseDistribution:
    if param.kind == "categorical":
        return optuna.distributions.CategoricalDistribution(list(param.choices))
    if param.kind == "int":
        return optuna.distributions.IntDistribution(int(param.low), int(param.high), log=param.log,
                                                    step=int(param.step or 1))
    return optuna.distributions.FloatDistribution(float(param.low), float(param.high), log=param.log,
                                                  step=None if param.step is None else float(param.step))


def _stored_points(exp: Experiment) -> list[Point] | None:
    """The finished trials of the search's stored study (polyp_ray/optuna.json names it), best first;
    None where there is none or it cannot be opened (trials.csv serves then)."""
    try:
        study = load_stored_study(exp.layout)
        trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    except Exception:  # noqa: BLE001 - no record, a moved database, a server down: the table's values serve
        return None
    points = [(dict(t.params), float(t.value)) for t in trials  # type: ignore[arg-type]
              if "warm_start_from" not in t.user_attrs and t.value is not None and math.isfinite(t.value)]
    return sorted(points, key=lambda p: -p[1] if exp.maximise else p[1])


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
