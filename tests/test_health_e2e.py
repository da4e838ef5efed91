"""The health monitor for real: a real supervisord running the monitor as its event
listener, real runners on real ports, killed, stopped and bloated for real."""

from __future__ import annotations

import json
import os
import random
import signal
from collections import Counter
from collections.abc import Callable

import pytest

from tests.conftest import Env, wait_for
from tests.health_helpers import FAST, Look, alive

pytestmark = pytest.mark.e2e


def test_kill9_fifty_times_then_kill_the_monitor(make_env: Callable[..., Env]) -> None:
    env = make_env(
        max_sessions=5,
        **FAST,
        ZAPVISOR_CRASH_MAX_EXITS="1000",
        ZAPVISOR_BACKOFF_BASE="0.05",
        ZAPVISOR_BACKOFF_MAX="0.2",
    )
    names = [f"k{i}" for i in range(5)]
    env.cli("create", names[0], "--connector", "sim")
    look = Look(env)
    monitor = wait_for(lambda: (m := look.monitor()) and m.state == "RUNNING" and m)
    for name in names[1:]:
        env.cli("create", name, "--connector", "sim")
    for name in names:
        env.cli("sim-scan", name)
    assert look.monitor_proc().pid == monitor.pid, "creating sessions restarted the monitor"
    ports = {n: look.session(n).port for n in names}
    assert sorted(ports.values()) == list(range(env.base_port, env.base_port + 5))

    rng = random.Random(6)
    kills: Counter[str] = Counter()
    killed: set[int] = set()
    for _ in range(50):
        # any runner that is up (the ones just killed may still be coming back)
        ready = wait_for(
            lambda: [n for n in names if (pid := look.up(n)) and pid not in killed], timeout=30
        )
        name = rng.choice(ready)
        pid = look.proc(name).pid
        assert pid, f"{name} is up, so it has a pid"
        os.kill(pid, signal.SIGKILL)
        killed.add(pid)
        kills[name] += 1

    for name in names:
        pid = wait_for(lambda n=name: look.up(n), timeout=30)
        assert pid not in killed
        wait_for(lambda n=name: look.session(n).status == "connected", timeout=15)
        assert look.session(name).port == ports[name], "came back on its own port"
        # why_down clears once supervisord says RUNNING (startsecs after the start): the
        # monitor's record is settled, so the one kept across its own restart is final
        h = wait_for(
            lambda n=name: (x := look.health(n)).restarts == kills[n] and not x.why_down and x,
            timeout=15,
        )
        assert h.exits == kills[name] and h.last_exit_status == -1
        assert h.last_restart_reason == "killed by a signal" and h.parked_at is None
        assert len(look.events(name, "crash")) == kills[name]
    assert sum(kills.values()) == 50

    shown = env.json("show", names[0])
    assert shown["restarts"] == kills[names[0]] and shown["last_exit_status"] == -1
    assert shown["why_down"] is None and shown["process_state"] == "RUNNING"

    # the monitor itself: supervisord brings it back, and nothing it knew is lost
    before = {n: look.health(n) for n in names}
    assert monitor.pid, "a RUNNING monitor has a pid"
    os.kill(monitor.pid, signal.SIGKILL)
    reborn = wait_for(
        lambda: (m := look.monitor()) and m.state == "RUNNING" and m.pid != monitor.pid and m,
        timeout=30,
    )
    wait_for(lambda: look.checks() >= 3 and look.monitor_proc().pid == reborn.pid)
    assert {n: look.health(n) for n in names} == before
    victim = names[2]
    old = look.proc(victim).pid
    assert old, f"{victim} is up, so it has a pid"
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: (pid := look.up(victim)) and pid != old, timeout=30)
    wait_for(lambda: look.health(victim).restarts == kills[victim] + 1)
    look.close()


def test_hung_runner_is_killed_and_restarted(make_env: Callable[..., Env]) -> None:
    env = make_env(max_sessions=2, **FAST)
    env.cli("create", "frozen", "--connector", "sim")
    look = Look(env)
    pid = wait_for(lambda: look.up("frozen"))
    checks = look.checks()
    wait_for(lambda: look.checks() >= checks + 2)  # the monitor has seen it answer
    os.kill(pid, signal.SIGSTOP)  # alive, port open, never answers
    new = wait_for(lambda: (p := look.up("frozen")) and p != pid and p, timeout=60)
    assert not alive(pid), "the hung runner was killed, not left behind"
    h = look.health("frozen")
    assert h.last_restart_reason == "hung: /health failed 2 checks in a row"
    assert h.restarts == 1 and h.exits == 0, "a restart for a hang is not a crash"
    hung = look.events("frozen", "hung")
    assert len(hung) == 1 and hung[0].detail["failed_checks"] == 2
    assert look.session("frozen").port == env.base_port and new
    look.close()


def test_crash_loop_backs_off_then_parks_and_start_unparks(make_env: Callable[..., Env]) -> None:
    env = make_env(
        max_sessions=2,
        **FAST,
        ZAPVISOR_CRASH_WINDOW="120",
        ZAPVISOR_CRASH_MAX_EXITS="4",
        ZAPVISOR_BACKOFF_BASE="0.5",
        ZAPVISOR_BACKOFF_MAX="10",
    )
    env.cli(
        "create",
        "loop",
        "--connector",
        "sim",
        "--timing-config",
        json.dumps({"sim": {"crash_after_seconds": 1}}),
    )
    look = Look(env)
    wait_for(lambda: look.session("loop").desired_state == "stopped", timeout=90)

    crashes = look.events("loop", "crash")
    delays = [e.detail["restart_in"] for e in crashes]
    assert delays == [0, 0.5, 1.0], "capped exponential backoff, first restart at once"
    assert [e.detail["exits_in_window"] for e in crashes] == [1, 2, 3]
    s = look.session("loop")
    assert s.status == "error" and s.last_error == "crash loop: 4 exits in 2 minutes"
    assert look.events("loop", "park")

    shown = env.json("show", "loop")
    assert shown["process_state"] == "EXITED" and shown["desired_state"] == "stopped"
    assert shown["restarts"] == 3 and shown["last_exit_status"] == 1
    assert shown["parked_at"] and shown["next_restart_at"] is None
    assert shown["why_down"].startswith("crash loop: 4 exits in 2 minutes")
    assert "sim fault: crash after 1 s" in shown["why_down"], "its last stderr lines"
    assert "sim fault: crash after 1 s" in (look.health("loop").stderr_tail or "")
    # parked is parked: nothing restarts it
    checks = look.checks()
    wait_for(lambda: look.checks() >= checks + 4)
    assert look.proc("loop").state == "EXITED"
    assert look.health("loop").restarts == 3
    alerts = wait_for(lambda: env.json("alerts"))
    assert [a["key"] for a in alerts] == ["session_error:loop"]
    assert alerts[0]["severity"] == "critical"

    # the operator fixes it and starts it: un-parked, it stays up
    env.cli("config", "loop", "--timing-config", "{}")
    started = env.json("start", "loop")
    assert started["process_state"] in ("STARTING", "RUNNING") and started["pid"]
    assert started["desired_state"] == "running"
    wait_for(lambda: look.up("loop"))
    wait_for(lambda: look.health("loop").parked_at is None)
    assert look.health("loop").recent_exits == []
    wait_for(lambda: env.json("alerts") == [])
    assert env.json("show", "loop")["why_down"] is None
    look.close()


def test_memory_cap_and_stuck_state_restart_gracefully(make_env: Callable[..., Env]) -> None:
    env = make_env(
        max_sessions=3, **FAST, MAX_SESSION_MEMORY_MB="150", ZAPVISOR_RECONNECTING_TIMEOUT="1"
    )
    made = env.cli(
        "create",
        "fat",
        "--connector",
        "sim",
        "--timing-config",
        json.dumps({"sim": {"allocate_mb": 250}}),
        check=False,
    )
    # On a loaded machine the monitor may find the fat runner over its cap (and restart
    # it) before create has seen it healthy: then create says so, and the session stays.
    assert made.returncode == 0 or "is not healthy" in made.stderr, made.stderr
    env.cli(
        "create",
        "lost",
        "--connector",
        "sim",
        "--timing-config",
        json.dumps({"sim": {"stuck_status": "reconnecting"}}),
    )
    env.cli("create", "fine", "--connector", "sim")
    look = Look(env)
    fine = wait_for(lambda: look.up("fine"))

    wait_for(lambda: look.health("fat").restarts >= 1, timeout=60)
    h = look.health("fat")
    assert h.last_restart_reason is not None and h.last_restart_reason.startswith("memory: ")
    assert h.last_restart_reason.endswith("MB PSS over the 150 MB cap") and h.exits == 0
    event = look.events("fat", "memory")[0]
    assert event.detail["pss_mb"] > 150 and event.detail["cap_mb"] == 150

    wait_for(lambda: look.health("lost").restarts >= 1, timeout=60)
    reason = look.health("lost").last_restart_reason or ""
    assert reason.startswith("stuck: reconnecting for "), reason
    assert look.events("lost", "stuck")[0].detail["status"] == "reconnecting"
    assert look.up("fine") == fine and look.health("fine").restarts == 0
    look.close()
