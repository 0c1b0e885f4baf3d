"""Keep TensorFlow's C++ start-up lines off the user's console where one process loads a model.

TensorFlow's C++ libraries log to file descriptor 2 at import and when they first probe the devices,
before Python's logging exists and whatever TF_CPP_MIN_LOG_LEVEL says (a CUDA probe error on every
machine without a GPU, oneDNN notices). A command line that then prints one line of its own, or a
search driver that loads one model for the report, must not show them; trials keep theirs in their
own log files. Python exceptions are unaffected: they are raised, not logged.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def quiet_stderr() -> Iterator[None]:
    """File descriptor 2 pointed at /dev/null for the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def quiet_keras() -> Any:
    """``import keras`` (and TensorFlow) without its start-up lines."""
    if "keras" not in sys.modules:
        with quiet_stderr():
            import keras  # noqa: F401
    return sys.modules["keras"]
