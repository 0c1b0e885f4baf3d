"""What TensorFlow's C++ libraries write to a console at start-up, for the tests that keep it quiet."""

from __future__ import annotations

import re

# absl's prefix (I0000 00:00:1796425685.829109 13863 port.cc:153] ...), its pre-init notice, the CUDA probe.
TF_CPP_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:[\d.]+ +\d+ [\w.]+:\d+\]|absl::InitializeLog|cuInit|cuda drivers",
                         re.MULTILINE)


def tf_cpp_lines(console: str) -> list[str]:
    """The lines of ``console`` that TensorFlow's C++ side wrote."""
    return [line for line in console.splitlines() if TF_CPP_LINE.search(line)]
