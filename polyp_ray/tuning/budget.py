"""The time budget, respected: with ``time_budget_s`` no trial starts that cannot reach its first rung
(``grace_period`` epochs) before the budget ends, judged by the running estimate of what a trial's
first epoch costs (process start, model build and compile, the epoch) and what each later epoch costs.

Tune's own ``time_budget_s`` stops every trial at the deadline, so without this a trial started in the
last minute trains no epoch and sits in the results beside real ones. A trial that still trained none
(it started before any estimate existed) is labelled NOT_STARTED by finish.py, apart from the results.
"""

from __future__ import annotations

import copy
import time
from statistics import mean
from typing import Any

from ray.tune.search import Searcher

from polyp_ray.strategy_config import NOT_STARTED

__all__ = ["NOT_STARTED", "BudgetGuard"]


class BudgetGuard(Searcher):
    """A searcher wrapper: suggests through ``searcher`` until a new trial could not reach the first
    rung in the time left, then reports FINISHED (the running trials carry on to the deadline)."""

    def __init__(self, searcher: Searcher, time_budget_s: float | None, first_rung: int) -> None:
        super().__init__(metric=searcher.metric, mode=searcher.mode)
        self.searcher = searcher
        self.budget_s = time_budget_s
        self.first_rung = first_rung
        self.started: float | None = None
        self.first_epoch_s: dict[str, float] = {}  # trial -> seconds from its start to its first epoch
        self.epoch_s: dict[tuple[str, int], float] = {}  # (trial, epoch > 1) -> that epoch's seconds
        self.refused = False

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def time_to_first_rung(self) -> float | None:
        """Seconds a new trial needs to report its first rung, or None before any trial reported."""
        if not self.first_epoch_s:
            return None
        later = list(self.epoch_s.values())
        per_epoch = mean(later) if later else mean(self.first_epoch_s.values())
        return mean(self.first_epoch_s.values()) + (self.first_rung - 1) * per_epoch

    def suggest(self, trial_id: str) -> dict | str | None:  # type: ignore[override]  # FINISHED is a str
        now = time.monotonic()
        if self.started is None:
            self.started = now
        if self.budget_s is not None:
            need = self.time_to_first_rung()
            if need is not None and now + need > self.started + self.budget_s:
                if not self.refused:
                    print(f"time budget: {self.started + self.budget_s - now:.0f} s left, a new trial needs about "
                          f"{need:.0f} s to reach epoch {self.first_rung}; no more trials start", flush=True)
                self.refused = True
                return Searcher.FINISHED
        return self.searcher.suggest(trial_id)

    def _record(self, trial_id: str, result: dict | None) -> None:
        if not result or "epoch" not in result:
            return
        epoch = int(result["epoch"])
        if epoch == 1 and "time_total_s" in result:
            self.first_epoch_s[trial_id] = float(result["time_total_s"])
        elif epoch > 1 and "epoch_s" in result:
            self.epoch_s[(trial_id, epoch)] = float(result["epoch_s"])

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self._record(trial_id, result)
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self._record(trial_id, result)
        self.searcher.on_trial_complete(trial_id, result=result, error=error)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return self.searcher.set_max_concurrency(max_concurrent)

    def on_pause(self, trial_id: str) -> None:  # HyperBand pauses trials; OptunaSearch has no use for it
        getattr(self.searcher, "on_pause", lambda _: None)(trial_id)

    def on_unpause(self, trial_id: str) -> None:
        getattr(self.searcher, "on_unpause", lambda _: None)(trial_id)

    def add_evaluated_point(self, *args: Any, **kwargs: Any) -> None:
        self.searcher.add_evaluated_point(*args, **kwargs)

    def save(self, checkpoint_path: str) -> None:
        self.searcher.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.searcher.restore(checkpoint_path)

    def get_state(self) -> dict:  # Tune saves each wrapper's own state, then the base searcher's (as for
        state = self.__dict__.copy()  # its ConcurrencyLimiter)
        del state["searcher"]
        return copy.deepcopy(state)

    def set_state(self, state: dict) -> None:
        self.__dict__.update(state)
