"""The monitor's harder cases, for real (real supervisord, real sim runners): a runner
that hangs again after every restart, and a stuck state timed across monitor restarts."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from tests.conftest import Env, wait_for
from tests.health_helpers import FAST, Look, alive

pytestmark = pytest.mark.e2e


def test_a_runner_that_hangs_after_every_restart_is_parked(make_env: Callable[..., Env]) -> None:
    env = make_env(
        max_sessions=1,
        **FAST,
        ZAPVISOR_CRASH_MAX_EXITS="3",
        ZAPVISOR_CRASH_WINDOW="600",
        ZAPVISOR_BACKOFF_BASE="0.5",
    )
    env.cli("create", "sleepy", "--connector", "sim")
    look = Look(env)
    frozen: list[int] = []
    for _ in range(3):
        pid = wait_for(lambda: (p := look.up("sleepy")) and p not in frozen and p, timeout=60)
        checks = look.checks()
        wait_for(lambda c=checks: look.checks() >= c + 2)  # the monitor has seen it answer
        os.kill(pid, signal.SIGSTOP)  # alive, port open, never answers again
        frozen.append(pid)

    wait_for(lambda: look.session("sleepy").desired_state == "stopped", timeout=60)
    s = look.session("sleepy")
    assert s.status == "error" and s.last_error == "crash loop: 3 exits in 10 minutes"
    hung = look.events("sleepy", "hung")
    assert [e.detail["exits_in_window"] for e in hung] == [1, 2, 3]
    assert [e.detail["restart_in"] for e in hung] == [0, 0.5, 0], "backed off, then parked"
    h = look.health("sleepy")
    assert h.parked_at is not None and h.restarts == 2 and h.exits == 0
    assert h.why_down == (
        "crash loop: 3 exits in 10 minutes; hung: /health failed 2 checks in a row"
    )
    wait_for(lambda: look.proc("sleepy").state == "STOPPED")
    wait_for(lambda: not any(alive(p) for p in frozen))
    # parked is parked: nothing starts it again
    checks = look.checks()
    wait_for(lambda: look.checks() >= checks + 4)
    assert look.proc("sleepy").state == "STOPPED"
    shown = env.json("show", "sleepy")
    assert shown["why_down"] == h.why_down and shown["restarts"] == 2

    env.json("start", "sleepy")  # the operator's start un-parks it
    wait_for(lambda: look.up("sleepy"))
    wait_for(lambda: look.health("sleepy").parked_at is None)
    assert look.health("sleepy").recent_exits == []
    look.close()


def test_a_stuck_state_is_timed_across_monitor_restarts(make_env: Callable[..., Env]) -> None:
    """The monitor is killed again and again, each time long before the timeout: the
    stuck session is restarted all the same, timed from when it got stuck."""
    env = make_env(max_sessions=1, **FAST, ZAPVISOR_RECONNECTING_TIMEOUT="5")
    stuck = json.dumps({"sim": {"stuck_status": "reconnecting"}})
    env.cli("create", "lost", "--connector", "sim", "--timing-config", stuck)
    look = Look(env)
    wait_for(lambda: look.session("lost").status == "reconnecting", timeout=30)
    seen_stuck = datetime.now(UTC)
    killed: list[int] = []
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline, f"not restarted after {len(killed)} monitor kills"
        m = wait_for(
            lambda: (x := look.monitor()) and x.state == "RUNNING" and x.pid not in killed and x,
            timeout=30,
        )
        if killed:  # each new monitor has two checks before it is killed in its turn
            wait_for(
                lambda m=m: (st := look.status()).get("pid") == m.pid and st["checks"] >= 2,
                timeout=30,
            )
            if look.health("lost").restarts:
                break
        assert m.pid, "a RUNNING monitor has a pid"
        os.kill(m.pid, signal.SIGKILL)
        killed.append(m.pid)
    h = look.health("lost")
    assert h.restarts == 1 and h.last_restart_reason is not None
    assert h.last_restart_reason.startswith("stuck: reconnecting for "), h.last_restart_reason
    # one event, or two when a monitor was killed between writing it and its health
    # row (events are written first: at least once); the first is timed from the start
    events = look.events("lost", "stuck")
    assert events and {e.detail["status"] for e in events} == {"reconnecting"}
    since = datetime.fromisoformat(events[0].detail["since"])
    assert since <= seen_stuck, "timed from when it got stuck, not from a monitor's start"
    restarted_by = datetime.fromisoformat(look.status()["started_at"])
    assert since < restarted_by
    look.close()
