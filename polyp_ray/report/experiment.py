"""Read an experiment folder (docs/experiment-layout.md) into one object; the rest of the report never
touches the disk layout.

Trial folders are found by their recorded path first and then by name inside the experiment folder, so
an experiment copied off a cluster (absolute paths from another machine) still reports.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from polyp_ray.errors import PolypRayError
from polyp_ray.experiment import TEST_METRICS, ExperimentLayout, recorded_epochs
from polyp_ray.models.registry import family_name
from polyp_ray.report.strategy import split_not_started
from polyp_ray.searchspace import SearchSpace, load_searchspace


class ReportError(PolypRayError):
    """The experiment folder cannot be reported on (missing or unreadable files)."""


@dataclass
class Experiment:
    path: Path
    job: dict[str, Any]
    job_text: str
    space_text: str
    space: SearchSpace | None
    space_problem: str
    trials: pd.DataFrame  # trials.csv, best first (by the job's metric), with each trial's ``family``
    histories: dict[str, pd.DataFrame]  # trial_id -> per-epoch rows
    tests: dict[str, dict[str, Any]]  # trial_id -> test_metrics.json
    params: dict[str, dict[str, Any]]  # trial_id -> the sampled parameters, with their original types
    dataset: dict[str, Any]
    environment: dict[str, str]
    command: str
    notes: list[str] = field(default_factory=list)  # what was missing, shown in the page
    test_errors: dict[str, str] = field(default_factory=dict)  # trial_id -> why test scoring failed
    strategy: dict[str, Any] = field(default_factory=dict)  # polyp_ray/strategy.json: scheduler, sampler, keys
    not_started: list[str] = field(default_factory=list)  # trials the time budget stopped before an epoch

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def layout(self) -> ExperimentLayout:
        return ExperimentLayout(self.path)

    @property
    def metric(self) -> str:
        return str(self.job.get("metric", "val_dice"))

    @property
    def maximise(self) -> bool:
        return self.job.get("mode", "max") == "max"

    @property
    def epochs(self) -> int:
        """Every trial's number of epochs (ASHA's max_t), at every version of the recorded job."""
        return recorded_epochs(self.job) or 1

    @property
    def best_trial_id(self) -> str | None:
        scored = self.scored_trials()
        return None if scored.empty else str(scored.iloc[0]["trial_id"])

    def scored_trials(self) -> pd.DataFrame:
        """Trials with a best validation score, best first (an errored trial may have none)."""
        column = f"best_{self.metric}"
        return self.trials.dropna(subset=[column]) if column in self.trials else self.trials.iloc[0:0]

    def trial_row(self, trial_id: str) -> pd.Series:
        return self.trials.loc[self.trials["trial_id"] == trial_id].iloc[0]

    def test_error(self, trial_id: str) -> str:
        """Why scoring this trial's checkpoint on the test split failed ("" when it did not)."""
        return self.test_errors.get(trial_id, "")

    def per_image(self, trial_id: str, key: str = "dice") -> dict[str, float]:
        rows = self.tests.get(trial_id, {}).get("per_image", [])
        return {str(r["stem"]): float(r[key]) for r in rows if key in r}


def load_experiment(path: str | Path) -> Experiment:
    exp = Path(path).expanduser().resolve()
    layout = ExperimentLayout(exp)
    _check_folder(layout)
    job_text = _read_text(layout.job)
    job = layout.job_record()
    space_text = _read_text(layout.space)
    space, space_problem = _load_space(layout.space)
    trials, not_started = split_not_started(_read_trials(layout.trials_table, job))
    notes: list[str] = []
    recorded = trials["trial_dir"] if "trial_dir" in trials else [None] * len(trials)
    dirs = {str(t): _trial_dir(exp, d) for t, d in zip(trials["trial_id"], recorded, strict=True)}
    histories = {t: _history(d) for t, d in dirs.items() if d is not None}
    missing = sorted(t for t, d in dirs.items() if d is None)
    if missing:
        notes.append(f"no trial folder found for {len(missing)} trial(s): {', '.join(missing)}")
    failed = _test_errors(trials)
    # A trial whose scoring failed may still have an earlier run's test_metrics.json: not its checkpoint's.
    tests = {t: body for t in dirs
             if t not in failed and (body := _read_json(layout.trial(t).test_metrics))}
    older = sorted(t for t, body in tests.items() if not body.get("protocol"))
    if older:
        notes.append(f"{len(older)} trial(s) were scored on the test split by an older polyp-ray, at the model's "
                     f"input size rather than each image's original resolution (no \"protocol\" in "
                     f"{TEST_METRICS}); their test scores are not comparable with the others': "
                     f"{', '.join(older[:20])}{' ...' if len(older) > 20 else ''}")
    params = {t: _params(d, trials, t, job) for t, d in dirs.items()}
    return Experiment(exp, job, job_text, space_text, space, space_problem, trials, histories, tests, params,
                      _read_json(layout.dataset), _read_json(layout.environment),
                      _read_text(layout.command).strip(), notes, failed,
                      _read_json(layout.strategy), not_started)


def _test_errors(trials: pd.DataFrame) -> dict[str, str]:
    if "test_error" not in trials:
        return {}
    errors = trials.dropna(subset=["test_error"])
    return {str(t): str(e) for t, e in zip(errors["trial_id"], errors["test_error"], strict=True) if str(e).strip()}


def _check_folder(layout: ExperimentLayout) -> None:
    exp = layout.root
    if not exp.is_dir():
        raise ReportError(f"{exp}: experiment folder not found")
    if layout.is_finished():
        return
    inside = layout.experiments_inside()
    if inside:
        raise ReportError(f"{exp}: a storage folder, not an experiment; its experiments: {', '.join(inside)}")
    raise ReportError(f"{exp}: no {layout.trials_table.relative_to(exp)}; not a finished search (finish it with "
                      "python -m polyp_ray.search --resume)")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


def _read_json(path: Path) -> dict[str, Any]:
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def read_table_body(path: Path, rows_key: str) -> dict[str, Any] | None:
    """A results file the search may not have written (or written by an older polyp-ray): its body where it
    holds a ``rows_key`` list, else None, so its report section says what is missing instead of failing."""
    body = _read_json(path) if path.is_file() else {}
    return body if isinstance(body.get(rows_key), list) else None


def _load_space(path: Path) -> tuple[SearchSpace | None, str]:
    try:
        return load_searchspace(path), ""
    except PolypRayError as err:
        return None, str(err)


def _read_trials(path: Path, job: dict[str, Any]) -> pd.DataFrame:
    try:
        # Trial ids are hex strings: "1e5a0c3d" must not become the float 1e5.
        table = pd.read_csv(path, dtype={"trial_id": str, "model": str, "node_ip": str,
                                           "test_error": str})
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise ReportError(f"{path}: unreadable trials table ({err})") from None
    if table.empty or "trial_id" not in table:
        raise ReportError(f"{path}: no trials recorded")
    fixed = job.get("trial") or {}
    if "model" not in table:
        table["model"] = str(fixed.get("model", "model"))
    # A family is a decoder on an encoder: "unet" (the notebook's conv encoder), "unet_resnet50", ...; the
    # model column stays the decoder the trial ran (a sampled parameter, for the importance and the plots).
    encoders = table["encoder"] if "encoder" in table else pd.Series(fixed.get("encoder", "conv"), index=table.index)
    table["family"] = [family_name(str(m), e) for m, e in zip(table["model"], encoders, strict=True)]
    metric = f"best_{job.get('metric', 'val_dice')}"
    if metric in table:
        table = table.sort_values(metric, ascending=job.get("mode", "max") == "min", na_position="last")
    return table.reset_index(drop=True)


def _trial_dir(exp: Path, recorded: Any) -> Path | None:
    if not isinstance(recorded, str) or not recorded:
        return None
    for candidate in (Path(recorded), exp / Path(recorded).name):
        if candidate.is_dir():
            return candidate
    return None


def _history(trial_dir: Path) -> pd.DataFrame:
    """Per-epoch rows, one per epoch: a restored trial repeats epochs, its last report wins."""
    files = ExperimentLayout.tune_trial(trial_dir)
    rows = _result_lines(files.result)
    if rows and all("epoch" in row for row in rows):
        # Deduplicated and sorted here, not in pandas: thousands of trials, a few rows each.
        by_epoch = {row["epoch"]: row for row in rows}
        try:
            return pd.DataFrame([by_epoch[e] for e in sorted(by_epoch)])
        except TypeError:  # epochs that do not compare: let pandas sort them out below
            table = pd.DataFrame(rows)
    elif rows:
        table = pd.DataFrame(rows)
    else:
        try:
            table = pd.read_csv(files.progress)
        except (OSError, ValueError, pd.errors.ParserError):
            return pd.DataFrame(columns=["epoch"])
    if "epoch" not in table:
        return pd.DataFrame(columns=["epoch"])
    return table.drop_duplicates("epoch", keep="last").sort_values("epoch").reset_index(drop=True)


def _result_lines(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in _read_text(path).splitlines():
        try:
            row = json.loads(line)
        except ValueError:  # a half-written last line of a killed trial
            continue
        if isinstance(row, dict):
            rows.append({k: v for k, v in row.items() if not isinstance(v, dict | list)})
    return rows


def _params(trial_dir: Path | None, trials: pd.DataFrame, trial_id: str,
            job: dict[str, Any]) -> dict[str, Any]:
    """params.json keeps the sampled types (an int stays an int); trials.csv is the fallback."""
    if trial_dir is not None:
        body = _read_json(ExperimentLayout.tune_trial(trial_dir).params)
        if body:
            return body
    row = trials.loc[trials["trial_id"] == trial_id].iloc[0]
    names = set((job.get("trial") or {}).keys())
    return {k: v for k, v in row.items() if k in names and not (isinstance(v, float) and math.isnan(v))}
