"""Who proposed each trial's configuration, read back from the search's Optuna study for trials.csv's
``proposed_by`` column and the report: a seeded point (``points_to_evaluate``), one of the sampler's
random start-up draws (recorded by tuning/strategies.py's TPE), or the sampler itself.

A winner drawn at random in the start-up says the search was too short for its sampler to have learnt
anything: the reader should know that before calling the search's result a search's finding.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from polyp_ray.config import JobConfig
from polyp_ray.experiment import ExperimentLayout
from polyp_ray.stored_study import load_stored_study
from polyp_ray.strategy_config import SEEDED, STARTUP
from polyp_ray.tuning.strategies import STARTUP_ATTR

KNOWN = ("tpe", "random", "qmc")  # samplers whose every trial can be told: TPE records its start-up; the
# others only draw. CMA-ES and GP do not record their start-up, so their trials stay unlabelled.


def proposed_by(table: pd.DataFrame, job: JobConfig, layout: ExperimentLayout) -> list[str]:
    """One label per row of ``table`` (its columns hold each trial's configuration); "" where the trial is
    not one of the study's (a PBT clone's mutated configuration) or two of its matches disagree."""
    if job.sampler not in KNOWN:
        return [""] * len(table)
    study = load_stored_study(layout)
    startup = set(study.user_attrs.get(STARTUP_ATTR, []))
    labelled = [(trial.params, SEEDED if "fixed_params" in trial.system_attrs else
                 STARTUP if trial.number in startup else job.sampler)
                for trial in study.get_trials(deepcopy=False) if trial.params]
    return [_label(row, labelled) for row in table.to_dict("records")]


def _label(row: dict[str, Any], labelled: list[tuple[dict[str, Any], str]]) -> str:
    found = {label for params, label in labelled if all(row.get(k) == v for k, v in params.items())}
    return found.pop() if len(found) == 1 else ""
