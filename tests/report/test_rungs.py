"""Where ASHA may stop a trial, as the report draws it."""

from __future__ import annotations

import pytest

from polyp_ray.report.rungs import asha_rungs


@pytest.mark.parametrize(("grace", "factor", "epochs", "rungs"), [
    (1, 3, 6, [1, 3]), (1, 2, 4, [1, 2]), (2, 3, 20, [2, 6, 18]), (1, 3, 9, [1, 3]), (5, 3, 5, []),
])
def test_asha_rungs(grace: int, factor: int, epochs: int, rungs: list[int]) -> None:
    assert asha_rungs(grace, factor, epochs) == rungs
