"""supervisord's loop at rest (supctl/quietloop.py): it sleeps while nothing is timed,
a child's exit still wakes it at once, and a listener subscribed to a tick still
has supervisord wake for it."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest
from supervisor import events

from ecosystem.supctl import quietloop
from tests.conftest import Env, wait_for


def _wakes(pid: int) -> int:
    """How many times ``pid``'s main thread blocked and was woken so far."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    raise AssertionError("no voluntary_ctxt_switches in /proc status")


def _settle(pid: int, still: float = 1.5, timeout: float = 20.0) -> None:
    """Until ``pid`` has not woken for ``still`` seconds (its loop woke every second
    before: it never settled)."""
    deadline = time.monotonic() + timeout
    count, since = _wakes(pid), time.monotonic()
    while time.monotonic() - since < still:
        assert time.monotonic() < deadline, f"supervisord never rested {still} s"
        time.sleep(0.1)
        if (now := _wakes(pid)) != count:
            count, since = now, time.monotonic()


def _settled(zv: Env, name: str) -> int:
    """The session's runner pid once supervisord has nothing timed left (RUNNING)."""
    shown = wait_for(
        lambda: (s := zv.json("show", name)) and s["process_state"] == "RUNNING" and s, 30
    )
    return int(shown["pid"])


@pytest.mark.e2e
def test_supervisord_sleeps_at_rest_and_wakes_at_once_for_an_exit(zv: Env) -> None:
    zv.cli("create", "alpha", "--connector", "sim")
    # stopped: nothing writes to supervisord's pipes (a runner waiting for a scan logs
    # its QR's rotations), only the monitor runs, waiting for events
    zv.cli("stop", "alpha")
    sup = zv.supervisord_pid()
    assert sup is not None
    _settle(sup)  # the stop's events told to the monitor, the command's connection gone
    before = _wakes(sup)
    time.sleep(3.0)  # a window at rest: no condition to wait for, the count is the point
    woke = _wakes(sup) - before
    # its own loop woke every second before: 3 here; now only what arrives wakes it
    assert woke <= 1, f"supervisord woke {woke} times in 3 s at rest"

    zv.cli("start", "alpha")
    pid = _settled(zv, "alpha")

    # a runner's exit is a SIGCHLD: reaped at once, not at the end of a 30 s sleep
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    wait_for(lambda: not psutil.pid_exists(pid), timeout=QUIET_BOUND)
    assert time.monotonic() - t0 < QUIET_BOUND
    # and the monitor, told by the event, starts it again
    assert _settled(zv, "alpha") != pid


QUIET_BOUND = quietloop.QUIET_MAX / 3
"""Well under the longest sleep: a reap within it was woken by the signal."""


def test_a_tick_with_a_listener_bounds_the_sleep() -> None:
    """supervisord sends TICK_5 when its 5 s timeslice rolls over: with a listener
    subscribed, the loop wakes just past the boundary; with none, nothing is due."""
    saved = events.callbacks[:]
    events.clear()
    try:
        _ticks_heard()
    finally:
        events.callbacks[:] = saved


def _ticks_heard() -> None:
    assert quietloop.next_tick(1000.0) is None

    def heard(event: events.Event) -> None:
        pass

    events.subscribe(events.Tick5Event, heard)
    assert quietloop.next_tick(1002.0) == pytest.approx(3.0)
    assert quietloop.next_tick(1004.9) == pytest.approx(0.1)
    events.clear()
    events.subscribe(events.Event, heard)  # every event, ticks included
    assert quietloop.next_tick(1000.5) == pytest.approx(4.5)
