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


def one_line(err: BaseException, limit: int = 300) -> str:
    """``err`` as ``Type: message`` on one line, at most ``limit`` characters of message: what a user sees
    of an exception we did not raise ourselves. An exception that carries another one as ``cause`` (Ray's
    RayTaskError, around a worker's own) is shown as that one, without the remote traceback around it."""
    cause = getattr(err, "cause", None)
    if isinstance(cause, BaseException):
        err = cause
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:limit]}" if text else type(err).__name__


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


def help_text(doc: str | None) -> str:
    """A module docstring as ``--help`` shows it: RST literals (````python -m ...````) as plain text."""
    return (doc or "").replace("``", "")
