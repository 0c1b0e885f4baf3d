"""An interrupted search ends as an interrupted search: Tune's state is snapshotted, and nothing after
the trials (test scores, the winner, the report) is written from a half-run search.

Tune snapshots and returns from ``fit()`` on SIGUSR1 (and on SIGINT, with a handler of its own that
would leave us no way to tell an interrupted fit from a finished one). A batch system stops a job with
SIGTERM instead, before its time limit (Slurm's ``--signal``) or on ``scancel``, and Python's default
for it would end the driver at once, without the last snapshot. So during the fit SIGINT and SIGTERM
are ours: the first is passed on to Tune as SIGUSR1, a second one stops the driver at once."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interruption:
    def __init__(self) -> None:
        self.requested = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(f"{signal.Signals(signum).name}: Tune snapshots the search; finish it later with --resume "
              "(again: stop at once)", flush=True)
        os.kill(os.getpid(), signal.SIGUSR1)


@contextmanager
def snapshot_on_signal() -> Iterator[Interruption]:
    interruption = Interruption()
    before = {sig: signal.signal(sig, interruption.handle) for sig in SIGNALS}
    tune_handler = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # read by fit() when it starts
    try:
        yield interruption
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
        if tune_handler is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = tune_handler
