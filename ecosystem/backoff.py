"""Retry delays: one rule for every loop that waits out a failure (a store that does
not answer, a receiver that is down, a runner that keeps crashing).

Delays double from ``initial`` up to ``cap``; a success starts them again from the
first. Stdlib only: the runner imports it too.
"""

from __future__ import annotations

from collections.abc import Sequence


def doubling(step: int, initial: float, cap: float) -> float:
    """The delay before retry ``step`` (0 for the first): initial, 2x, 4x ... cap."""
    return float(min(cap, initial * 2 ** min(step, 64)))


def scheduled(delays: Sequence[float], step: int) -> float:
    """The delay before retry ``step`` from a fixed schedule, its last delay repeating."""
    return float(delays[min(step, len(delays) - 1)])


class Backoff:
    """The delays of one retry loop: ``next()`` after each failure, ``reset()`` after a
    success."""

    def __init__(self, initial: float = 1.0, cap: float = 60.0) -> None:
        self.initial = initial
        self.cap = cap
        self.failures = 0

    def next(self) -> float:
        delay = doubling(self.failures, self.initial, self.cap)
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0
