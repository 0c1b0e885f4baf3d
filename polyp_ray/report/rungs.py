"""The epochs at which ASHA may stop a trial: where the report draws its rungs."""

from __future__ import annotations


def asha_rungs(grace_period: int, reduction_factor: int, epochs: int) -> list[int]:
    """The epochs at which ASHA may stop a trial: grace_period * reduction_factor**k < epochs (ASHA's max_t)."""
    rungs: list[int] = []
    if grace_period < 1 or reduction_factor < 2:
        return rungs
    epoch = grace_period
    while epoch < epochs:
        rungs.append(epoch)
        epoch *= reduction_factor
    return rungs
