"""How many runners start at once (ecosystem/boot.py ``Pace``), fed start times and run
queue lengths directly: the rules, not a host's timing."""

from __future__ import annotations

from ecosystem.boot import Pace


def test_grows_by_one_with_each_start_while_the_host_has_room() -> None:
    pace = Pace(ceiling=6, cpus=2, run_queue=lambda: 1)
    assert pace.allowed == 2
    for _ in range(3):
        pace.came_up(0.3)
    assert pace.allowed == 5
    for _ in range(5):
        pace.came_up(0.3)
    assert pace.allowed == 6, "never above the ceiling"


def test_a_full_run_queue_stops_the_growth() -> None:
    queue = [3]
    pace = Pace(ceiling=50, cpus=2, run_queue=lambda: queue[0])
    pace.came_up(0.3)
    assert pace.allowed == 3
    queue[0] = 3 + 2 * 2 + 1  # more than two runnable per core above the baseline
    for _ in range(4):
        pace.came_up(0.3)
    assert pace.allowed == 3


def test_a_start_much_slower_than_the_recent_ones_takes_a_quarter_off() -> None:
    pace = Pace(ceiling=50, cpus=2, run_queue=lambda: 0)
    for _ in range(6):
        pace.came_up(0.3)
    assert pace.allowed == 8
    pace.came_up(1.0)
    assert pace.allowed == 6
    pace.came_up(0.3)
    assert pace.allowed == 7, "as fast as the recent ones again: it grows again"


def test_one_lucky_start_does_not_hold_a_noisy_host_at_one() -> None:
    """Starts of 2-4 s on a busy host, after one of 0.2 s: measured against the fastest
    ever, every one would be "slow" and the batch would crawl one at a time."""
    pace = Pace(ceiling=50, cpus=2, run_queue=lambda: 0)
    pace.came_up(0.2)
    for seconds in (3.0, 2.5, 3.5, 2.0, 4.0, 3.0, 2.5, 3.0, 3.5, 2.0, 3.0, 2.5):
        pace.came_up(seconds)
    assert pace.allowed >= 6
