"""A hand edit breaks `runtime.env` under a real supervisord running the real monitor and
a real sim runner: the monitor keeps supervising, says so, and `zapvisor doctor` names
the variable."""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Callable
from typing import Any

import pytest

from ecosystem.paths import StatePaths
from ecosystem.supctl.render import MONITOR_PROGRAM
from tests.conftest import Env, wait_for
from tests.health_helpers import FAST, Look

pytestmark = pytest.mark.e2e

BAD = "ZAPVISOR_HEALTH_FAILURES"


def kill_and_wait_restart(look: Look, name: str, restarts: int) -> int:
    """Kill the runner; the monitor restarts it (the runner itself then exits at once
    while runtime.env is bad: it reads every setting too, see runner/startup.py)."""
    pid = look.proc(name).pid
    if pid:
        os.kill(pid, signal.SIGKILL)
    h = wait_for(lambda: (x := look.health(name)).restarts > restarts and x, timeout=30)
    assert look.events(name, "auto_restart"), "the restart is in the audit trail"
    return h.restarts


def monitor_warning(env: Env) -> dict[str, Any]:
    out = env.cli("doctor", "--json", check=False)
    checks = {c["name"]: c for c in json.loads(out.stdout)["checks"]}
    return dict(checks["health monitor"])


def test_a_bad_runtime_env_keeps_the_monitor_supervising(make_env: Callable[..., Env]) -> None:
    env = make_env(
        max_sessions=1,
        **FAST,
        ZAPVISOR_CRASH_MAX_EXITS="1000",
        ZAPVISOR_BACKOFF_BASE="0.5",
        ZAPVISOR_BACKOFF_MAX="2",
    )
    env.cli("create", "alpha", "--connector", "sim")
    look = Look(env)
    paths = StatePaths(env.home)
    try:
        monitor = wait_for(lambda: (m := look.monitor()) and m.state == "RUNNING" and m)
        wait_for(lambda: look.up("alpha"), timeout=30)
        good = paths.runtime_env.read_text("utf-8")
        assert re.search(rf"^{BAD}=", good, re.M), "the test breaks a variable that is there"
        paths.runtime_env.write_text(re.sub(rf"^{BAD}=.*$", f"{BAD}='many'", good, flags=re.M))

        problem = wait_for(lambda: look.status().get("settings_error"), timeout=30)
        assert problem["variables"] == [BAD] and BAD in problem["message"]
        assert problem["runs_on"] == "the last good settings"
        restarts = kill_and_wait_restart(look, "alpha", 0)
        checks = look.checks()
        wait_for(lambda: look.checks() >= checks + 3, timeout=30)
        now = look.monitor_proc()
        assert now.state == "RUNNING" and now.pid == monitor.pid, "it did not exit"
        log = (paths.logs / f"{MONITOR_PROGRAM}.log").read_text("utf-8", "replace")
        assert log.count(f"invalid setting {BAD}") == 1, "said once per change of the file"

        check = monitor_warning(env)
        assert check["level"] == "warn" and BAD in check["detail"] and BAD in check["fix"]

        # Restarted with the file still bad (supervisord restarting it, a reboot): it
        # runs on the defaults for that variable instead of exiting until FATAL.
        assert monitor.pid
        os.kill(monitor.pid, signal.SIGKILL)
        reborn = wait_for(
            lambda: (m := look.monitor()) and m.state == "RUNNING" and m.pid != monitor.pid and m,
            timeout=30,
        )
        wait_for(lambda: look.status().get("pid") == reborn.pid, timeout=30)
        assert look.status()["settings_error"]["runs_on"] == f"the defaults for {BAD}"
        kill_and_wait_restart(look, "alpha", restarts)
        assert look.monitor_proc().pid == reborn.pid
        assert monitor_warning(env)["level"] == "warn"

        # Fixed: the runner the monitor keeps restarting comes up, the warning goes.
        paths.runtime_env.write_text(good)
        wait_for(lambda: look.up("alpha"), timeout=60)
        wait_for(lambda: look.status().get("settings_error", 1) is None, timeout=30)
        assert monitor_warning(env)["level"] == "ok"
        assert look.monitor_proc().pid == reborn.pid
    finally:
        look.close()
