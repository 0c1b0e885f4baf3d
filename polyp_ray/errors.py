"""The one exception type users see: a one-line message that names the file or key at fault."""

from __future__ import annotations

import sys
from collections.abc import Callable


class PolypRayError(Exception):
    """A user-facing problem (bad input, missing file, bad setting).

    The CLIs print ``str(err)`` on one line and exit with code 2 instead of a traceback.
    """


class ConfigError(PolypRayError):
    """A job, search-space or trial setting is wrong."""


class DataError(PolypRayError):
    """A dataset folder or one of its files is unusable."""


class TrainingDiverged(PolypRayError):
    """The loss became NaN or infinite: the trial stops instead of reporting garbage."""


def run_cli(body: Callable[[], int], interrupted: str = "interrupted") -> int:
    """Run a command's body: a user-facing error is one line on stderr and exit code 2, never a traceback."""
    try:
        return body()
    except PolypRayError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130
