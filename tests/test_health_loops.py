"""The monitor's harder cases, for real (real supervisord, real sim runners): a runner
that hangs again after every restart, and a stuck state timed across monitor restarts."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

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
    wait_for(lambda: look.info("sleepy").state == "STOPPED")  # type: ignore[union-attr]
    wait_for(lambda: not any(alive(p) for p in frozen))
    # parked is parked: nothing starts it again
    checks = look.checks()
    wait_for(lambda: look.checks() >= checks + 4)
    assert look.info("sleepy").state == "STOPPED"  # type: ignore[union-attr]
    shown = env.json("show", "sleepy")
    assert shown["why_down"] == h.why_down and shown["restarts"] == 2

    env.json("start", "sleepy")  # the operator's start un-parks it
    wait_for(lambda: look.up("sleepy"))
    wait_for(lambda: look.health("sleepy").parked_at is None)
    assert look.health("sleepy").recent_exits == []
    look.close()
