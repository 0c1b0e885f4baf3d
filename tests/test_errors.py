"""errors.one_line: how an exception we did not raise ourselves is shown to a user, everywhere."""

from __future__ import annotations

from polyp_ray.errors import one_line


class Wrapper(Exception):
    """As Ray's RayTaskError: the worker's own exception is its ``cause``, its text a remote traceback."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__("Traceback (most recent call last):\n  File ...\n" + str(cause))
        self.cause = cause


def test_one_line_collapses_the_message_and_keeps_the_type() -> None:
    assert one_line(OSError("disk\n  full\t now")) == "OSError: disk full now"
    assert one_line(ValueError("x" * 500), limit=10) == "ValueError: " + "x" * 10
    assert one_line(KeyError()) == "KeyError"


def test_one_line_shows_the_wrapped_exception_not_the_remote_traceback() -> None:
    assert one_line(Wrapper(FileNotFoundError("model.keras"))) == "FileNotFoundError: model.keras"
