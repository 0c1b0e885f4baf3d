"""The search's Optuna study, kept in a database: SQLite in the experiment (``polyp_ray/optuna.db``) by
default, or any SQLAlchemy URL (``optuna_storage``, a team PostgreSQL). ``optuna-dashboard <url>`` opens
it while the search runs and after; a later search can start from its finished trials (``warm_start``).

SQLite rather than Optuna's journal file: each write is one transaction, so a SIGKILLed driver leaves the
database as of its last completed write (a journal file can keep a stale lock), and optuna-dashboard and
SQLAlchemy read it directly. A resumed search reloads the study from its URL; trials the killed driver
had asked for but Tune never recorded are marked FAIL, so no trial stays RUNNING forever.
"""

from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import FixedTrial, FrozenTrial, TrialState
from ray.air.constants import TRAINING_ITERATION
from ray.tune.search.optuna import OptunaSearch

from polyp_ray.config import JobConfig, to_dict
from polyp_ray.errors import ConfigError, one_line
from polyp_ray.experiment import ExperimentLayout, recorded_epochs
from polyp_ray.searchspace import SearchSpace
from polyp_ray.storage import ExperimentStore
from polyp_ray.stored_study import quietly, stored_location, write_record
from polyp_ray.tuning.strategies import new_sampler
from polyp_ray.tuning.trainable import score_key

ATTR = "polyp_ray"  # the study's user attribute recording what its values mean (metric, mode, fixed settings)
# Trial settings that do not change a trial's score, so an earlier trial counts whatever they were.
NOT_SCORED = {"output_dir", "num_predictions", "evaluate_test", "cpu_threads", "epochs", "data"}


def study_url(job: JobConfig, layout: ExperimentLayout) -> str:
    return job.optuna_storage or f"sqlite:///{layout.optuna_db}"


def shown(url: str) -> str:
    """The URL with its password hidden, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as given; opening it reports the problem
        return url


def open_storage(url: str, key: str) -> optuna.storages.RDBStorage:
    """An Optuna RDB storage, or a one-line ConfigError naming ``key`` (no driver, no server, bad URL)."""
    try:
        return optuna.storages.RDBStorage(url)
    except ImportError as err:  # Optuna re-raises the driver's own ImportError, which names the module
        missing = err.__cause__ or err
        raise ConfigError(f"{key}: {shown(url)}: its database driver is not installed ({missing}); for "
                          "PostgreSQL (SQLAlchemy 2.1 uses psycopg 3): pip install 'psycopg[binary]'") from None
    except Exception as err:  # noqa: BLE001 - SQLAlchemy raises many types for bad URLs and dead servers
        raise ConfigError(f"{key}: cannot open {shown(url)} ({one_line(err)})") from None


class PersistentOptunaSearch(OptunaSearch):
    """OptunaSearch whose study keeps every epoch, and whose restore closes the trials a killed driver
    left RUNNING in the database.

    Ray's OptunaSearch has no public handle on its study: this subclass reads three of its attributes,
    ``_ot_study`` (the optuna.Study), ``_ot_trials`` (Tune trial id -> optuna trial) and
    ``_completed_trials`` (Tune trial ids), the contract tests/tuning/test_study.py checks on the Ray
    installed (test_the_optuna_search_attributes_this_subclass_reads)."""

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        # Tune hands a trial's last result to on_trial_complete only, never to on_trial_result: reported
        # here, the study's intermediate values hold every epoch, the last one included.
        if result and {self.metric, TRAINING_ITERATION} <= set(result) and not error and \
                trial_id not in self._completed_trials:
            self.on_trial_result(trial_id, result)
        super().on_trial_complete(trial_id, result, error)

    def restore(self, checkpoint_path: str) -> None:
        super().restore(checkpoint_path)
        if self._ot_study is not None:
            fail_orphans(self._ot_study, {t.number for t in self._ot_trials.values()})


def fail_orphans(study: optuna.Study, known: set[int]) -> list[int]:
    """Mark FAIL the RUNNING trials Tune does not know (asked for after its last experiment checkpoint):
    Tune will never report them, and TPE and the dashboard would otherwise count them as running."""
    orphans = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
               if t.number not in known]
    for number in orphans:
        study.tell(number, state=TrialState.FAIL)
    return orphans


def new_searcher(job: JobConfig, space: SearchSpace, experiment: ExperimentStore) -> PersistentOptunaSearch:
    """The searcher of a new search: its study created (named after the experiment), described, and
    seeded with the warm-start trials, before OptunaSearch loads it."""
    # Everything that can refuse the job (warm start, an unreachable database) before anything is written.
    warm, source = warm_start_trials(job, space) if job.warm_start else ([], "")
    name, layout = experiment.name, experiment.layout
    url = study_url(job, layout)
    if job.optuna_storage is None:
        layout.ours.mkdir(parents=True, exist_ok=True)
    rdb = open_storage(url, "optuna_storage")
    direction = StudyDirection.MAXIMIZE if job.mode == "max" else StudyDirection.MINIMIZE
    study = quietly(lambda: optuna.create_study(storage=rdb, study_name=name, direction=direction,
                                                load_if_exists=True))
    if study.trials:
        raise ConfigError(f"optuna_storage: {shown(url)} already holds a study named {name!r}; pass another --name")
    study.set_user_attr(ATTR, study_record(job))
    if warm:
        study.add_trials(warm)
        print(f"warm start: {len(warm)} finished trials of {source}", flush=True)
    write_record(layout, url, name)
    print(f"Optuna study {name!r} in {shown(url)} (open it with: optuna-dashboard {shown(url)})", flush=True)
    sampler = new_sampler(job)
    return PersistentOptunaSearch(space.define_by_run, metric=score_key(job.metric), mode=job.mode,
                                  sampler=sampler, study_name=name, storage=rdb,
                                  points_to_evaluate=job.points_to_evaluate or None)


def study_record(job: JobConfig) -> dict[str, Any]:
    """What a study's values mean, stored with it, so a warm start can refuse or warn on a mismatch."""
    trial = {k: v for k, v in to_dict(job.trial).items() if k not in NOT_SCORED}
    data = {k: v for k, v in to_dict(job.trial.data).items() if k != "cache_dir"}
    return {"metric": score_key(job.metric), "mode": job.mode, "epochs": job.epochs, "trial": trial, "data": data}


def warm_start_trials(job: JobConfig, space: SearchSpace) -> tuple[list[FrozenTrial], str]:
    """The earlier study's finished trials that are points of this job's space, re-expressed in its
    distributions (so widening a range or adding a choice keeps them), with their values and per-epoch
    intermediate values. Trials outside the space, or trained at other fixed settings, are left out."""
    assert job.warm_start is not None
    url, name = _warm_source(job.warm_start, job.warm_start_study)
    earlier = quietly(lambda: optuna.load_study(study_name=name, storage=open_storage(url, "warm_start")))
    info = earlier.user_attrs.get(ATTR) or {}
    now = study_record(job)
    for key in ("metric", "mode"):
        if info and info.get(key) != now[key]:
            raise ConfigError(f"warm_start: study {name!r} ranked trials by {key} {info.get(key)!r}, this job by "
                              f"{now[key]!r}; its values cannot seed this search")
    if info:  # described before trial.epochs replaced max_epochs, too
        info = {**info, "epochs": recorded_epochs(info)}
    for key in ("epochs", "data"):
        if info and info.get(key) != now[key]:
            print(f"warning: warm_start: study {name!r} had another {key}; its scores are used as they are",
                  file=sys.stderr)
    kept: list[FrozenTrial] = []
    finished = earlier.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    for old in finished:
        trial = in_space(old, space, now["trial"], info.get("trial", {}))
        if trial is not None:
            trial.set_user_attr("warm_start_from", f"{name}#{old.number}")
            kept.append(trial)
    if len(kept) < len(finished):
        print(f"warm start: {len(finished) - len(kept)} trials of {name!r} are not points of this space (or "
              "ran at other fixed settings) and are left out", file=sys.stderr)
    return kept, f"study {name!r} in {shown(url)}"


def in_space(old: FrozenTrial, space: SearchSpace, fixed_now: dict[str, Any],
             fixed_before: dict[str, Any]) -> FrozenTrial | None:
    """``old`` as a trial of ``space``, or None where it is not one of its points.

    The space is walked with the old trial's values (its sampled parameters over the fixed settings it
    ran with), so conditional parameters resolve as they would in a new trial. A parameter the earlier
    search did not sample takes the value it was fixed at there, when the study recorded it."""
    if old.value is None or not math.isfinite(old.value):
        return None
    values = {**fixed_before, **old.params}
    probe = FixedTrial(values)
    try:
        with warnings.catch_warnings():  # FixedTrial warns on an out-of-range value: tested just below
            warnings.simplefilter("ignore", UserWarning)
            constants = space.define_by_run(probe) or {}
    except ValueError:  # the space samples a parameter whose earlier value is unknown
        return None
    distributions = probe.distributions
    for param, distribution in distributions.items():
        # _contains is Optuna's own range/step/choice test; FixedTrial only warns on an out-of-range value.
        if not _representable(distribution, values[param]) or \
                not distribution._contains(distribution.to_internal_repr(values[param])):
            return None
    for key, value in {**fixed_now, **constants}.items():
        if key not in distributions and key in values and values[key] != value:
            return None  # trained at another fixed setting than this search uses
    return optuna.trial.create_trial(
        params={n: values[n] for n in distributions}, distributions=distributions, value=old.value,
        intermediate_values=dict(old.intermediate_values), user_attrs=dict(old.user_attrs))


def _representable(distribution: optuna.distributions.BaseDistribution, value: Any) -> bool:
    try:
        distribution.to_internal_repr(value)
    except (ValueError, TypeError):  # e.g. a choice the new space dropped
        return False
    return True


def _warm_source(source: str, study: str | None) -> tuple[str, str]:
    """(storage URL, study name) of a warm start: an experiment folder or a storage URL."""
    if "://" not in source:
        layout = ExperimentLayout(Path(source).expanduser().resolve())
        location = stored_location(layout)
        if location is None:
            raise ConfigError(f"warm_start: {source} holds no Optuna study ({layout.optuna_db} or "
                              f"{layout.optuna_record.name})")
        url, name = location
        return url, study or name or _only_study(url)
    return source, study or _only_study(source)


def _only_study(url: str) -> str:
    names = optuna.study.get_all_study_names(open_storage(url, "warm_start"))
    if len(names) != 1:
        raise ConfigError(f"warm_start: {shown(url)} holds {len(names)} studies ({', '.join(names[:10])}); "
                          "name one with warm_start_study")
    return names[0]

