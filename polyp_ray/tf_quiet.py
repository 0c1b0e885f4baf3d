"""Import Keras (and with it TensorFlow) without TensorFlow's start-up lines on the user's console.

TensorFlow's C++ libraries log to file descriptor 2 at import, before Python's logging exists and
whatever TF_CPP_MIN_LOG_LEVEL says (a CUDA probe error on every machine without a GPU, oneDNN notices).
A command line that then prints one line of its own, or a search driver that loads one model for the
report, must not show them; trials keep theirs in their own log files.
"""

from __future__ import annotations

import os
import sys
from typing import Any


def quiet_keras() -> Any:
    """``import keras`` with file descriptor 2 pointed at /dev/null for the import only."""
    if "keras" not in sys.modules:
        saved = os.dup(2)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 2)
                import keras  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return sys.modules["keras"]
