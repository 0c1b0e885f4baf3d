"""A trial's best epoch, one rule everywhere (run_trial, the reporters, what ASHA and TPE are told), and
the state a checkpoint carries besides its model (``state.json``). Free of TensorFlow: the search's
driver and Tune's reporter read it."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE_FILE = "state.json"  # beside the checkpoint's model folder (polyp_ray.models.saving)


def improves(value: float, best: float | None, mode: str) -> bool:
    """``value`` beats ``best`` by ``mode`` (max or min): strictly, so the first of equal epochs stays the
    best; a NaN never beats a number, and anything beats no best (or a NaN one)."""
    if best is None or math.isnan(best):
        return True
    if math.isnan(value):
        return False
    return value > best if mode == "max" else value < best


def running_best(previous: float | None, value: float, mode: str) -> float:
    """The best of ``previous`` and ``value``; a NaN epoch never becomes the best."""
    return value if improves(value, previous, mode) else previous  # type: ignore[return-value]


@dataclass
class TrialState:
    """The epochs a trial has run so far, earlier processes' included. Its best epoch is derived from
    them, so a state written under one metric (or by an older polyp-ray, which kept val_dice's best
    only) is read right under any other."""

    epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    def best(self, metric: str, mode: str) -> tuple[int, float]:
        """(epoch, value) of the best epoch by ``metric``; (0, NaN) before the first."""
        best_epoch, best = 0, None
        for row in self.history:
            value = float(row[metric])
            if improves(value, best, mode):
                best_epoch, best = int(row["epoch"]), value
        return best_epoch, math.nan if best is None else best

    def write(self, checkpoint: Path) -> None:
        (checkpoint / STATE_FILE).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def read(cls, checkpoint: Path) -> TrialState:
        body = json.loads((checkpoint / STATE_FILE).read_text())
        return cls(int(body.get("epoch", 0)), list(body.get("history", [])), dict(body.get("config", {})))
