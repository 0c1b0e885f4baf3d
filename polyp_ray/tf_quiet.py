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
from contextlib import contextmanager, nullcontext
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


def start_tensorflow(verbose: bool = False) -> None:
    """For a command line (predict, export, a --debug trial): import Keras and let TensorFlow probe its
    devices now, with file descriptor 2 silenced, so that the C++ start-up lines (the oneDNN notice,
    "Could not find cuda drivers", "failed call to cuInit: UNKNOWN ERROR (303)" on every CPU machine)
    never reach the console; ``verbose`` (``-v``) leaves them on it."""
    if verbose:
        return
    with quiet_stderr():
        import keras

        if keras.config.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices()  # the CUDA probe logs here, once per process


def quiet_unless(verbose: bool) -> Any:
    """``quiet_stderr()``, or nothing when ``verbose``: for C++ work that logs as it goes (TFLite conversion)."""
    return nullcontext() if verbose else quiet_stderr()
