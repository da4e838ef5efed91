"""The one retry rule (ecosystem/backoff.py) that the runner's store writer, webhook
dispatcher and start-up, the monitor's start-up, alert notices and crash restarts use."""

from __future__ import annotations

from ecosystem.backoff import Backoff, doubling, scheduled


def test_delays_double_up_to_the_cap_and_start_again_after_a_success() -> None:
    backoff = Backoff(0.5, 30.0)
    assert [backoff.next() for _ in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    backoff.reset()
    assert backoff.next() == 0.5


def test_a_step_far_out_does_not_overflow() -> None:
    assert doubling(10_000, 1.0, 60.0) == 60.0


def test_a_schedule_repeats_its_last_delay() -> None:
    assert [scheduled((0, 5, 30, 300), n) for n in range(6)] == [0, 5, 30, 300, 300, 300]
