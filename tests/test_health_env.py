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
from ecosystem.store.postgres import PostgresStore
from ecosystem.supctl.render import MONITOR_PROGRAM
from tests.conftest import Env, wait_for
from tests.failover_hosts import Proxy, dsn_through, host_vars, target_of
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


def test_a_store_changed_in_runtime_env_moves_the_monitor_onto_it(
    make_env: Callable[..., Env], pg_dsn: str, pg_store: PostgresStore
) -> None:
    """A host's store setting changes (its .env edited, then any command that rewrites
    runtime.env): the monitor, which holds the store it opened at its start, starts
    again on the new one, so its heartbeat goes where its runners renew their leases.
    The new DSN goes through a TCP proxy that the test then cuts: the host's heartbeat
    stops, which it would not if the monitor still wrote through the old DSN."""
    proxy = Proxy(target_of(pg_dsn))
    env = make_env(max_sessions=1, **host_vars(pg_dsn, "h"))
    try:
        env.cli("apply")  # supervisord and the monitor, on the direct DSN
        look = Look(env)
        try:
            first = wait_for(lambda: (m := look.monitor()) and m.state == "RUNNING" and m)
            wait_for(lambda: _live(pg_store, "h"), timeout=30)
            env.extra["ZAPVISOR_DATABASE_URL"] = dsn_through(pg_dsn, proxy)
            env.cli("apply")  # rewrites runtime.env
            wait_for(
                lambda: (m := look.monitor()) and m.state == "RUNNING" and m.pid != first.pid,
                timeout=30,
            )
            log = (StatePaths(env.home).logs / f"{MONITOR_PROGRAM}.log").read_text()
            assert "the store changed in" in log and "zv-test-pw" not in log
            proxy.cut.set()
            wait_for(lambda: not _live(pg_store, "h"), timeout=30)
        finally:
            proxy.cut.clear()
            look.close()
            env.extra["ZAPVISOR_DATABASE_URL"] = pg_dsn  # its teardown, once the proxy is gone
    finally:
        proxy.close()


def _live(store: PostgresStore, host: str) -> bool:
    return any(h.live for h in store.fleet_state().hosts if h.host == host)
