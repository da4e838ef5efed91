"""Boot without a storm, for real: supervisord killed and brought back by a command,
and supervisord started alone (as systemd does) with the monitor starting sessions;
plus alerts raised, cleared and delivered to a real receiver."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable

import pytest

from tests.alert_receiver import Receiver
from tests.conftest import Env, wait_for
from tests.health_helpers import FAST, Look, alive

pytestmark = pytest.mark.e2e


def three_sessions(env: Env) -> dict[str, int]:
    """a (paired), b (running, unpaired), c (stopped); their ports."""
    for name in ("a", "b", "c"):
        env.cli("create", name, "--connector", "sim")
    env.cli("sim-scan", "a")
    env.cli("stop", "c")
    return {s["name"]: s["port"] for s in env.json("list")}


def test_supervisord_killed_any_command_restores_desired_states(
    make_env: Callable[..., Env],
) -> None:
    env = make_env(max_sessions=3, **FAST)
    ports = three_sessions(env)
    look = Look(env)
    before = {n: look.proc(n).pid for n in ("a", "b")}
    sup_pid = env.supervisord_pid()
    assert sup_pid
    os.kill(sup_pid, signal.SIGKILL)
    wait_for(lambda: not alive(sup_pid))
    for pid in before.values():  # runners die with their supervisord, freeing ports
        wait_for(lambda p=pid: not alive(p), timeout=30)

    listing = {s["name"]: s for s in env.json("list")}  # any command brings it back
    assert env.supervisord_pid() not in (None, sup_pid)
    for name in ("a", "b"):  # healthy already; RUNNING once past supervisord's startsecs
        assert listing[name]["process_state"] in ("STARTING", "RUNNING"), listing[name]
        assert listing[name]["port"] == ports[name] and listing[name]["pid"] != before[name]
        wait_for(lambda n=name: look.up(n))
    assert listing["c"]["process_state"] == "STOPPED" and listing["c"]["pid"] is None
    wait_for(lambda: look.session("a").status == "connected"), "resumed its saved auth"
    assert look.session("a").phone
    assert look.proc("c").start == 0, "the stopped session was never started"
    # the monitor came back with supervisord and found nothing left to start
    wait_for(lambda: (m := look.monitor()) and m.state == "RUNNING" and look.checks() >= 2)
    assert look.proc("c").state == "STOPPED"
    look.close()


def test_serve_boots_supervisord_and_the_monitor_starts_sessions(
    make_env: Callable[..., Env],
) -> None:
    """What systemd does at boot: `zapvisor serve` becomes supervisord in the
    foreground and no other command runs; the monitor starts what should run."""
    env = make_env(max_sessions=3, **FAST, ZAPVISOR_START_CONCURRENCY="1")
    ports = three_sessions(env)
    env.cli("shutdown")
    serve = subprocess.Popen(
        [sys.executable, "-m", "tui.cli.main", "serve"],
        env=env.vars,
        cwd=env.home.parent,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        look = Look(env)
        wait_for(lambda: serve.poll() is not None or (look.up("a") and look.up("b")), timeout=90)
        assert serve.poll() is None, serve.stderr.read() if serve.stderr else ""
        assert serve.poll() is None and env.supervisord_pid() == serve.pid, "exec'd in place"
        wait_for(lambda: look.session("a").status == "connected")
        # in the foreground supervisord does not apply its umask=: serve sets it
        logs = {p.name: p.stat().st_mode & 0o777 for p in (env.home / "logs").iterdir()}
        assert "wa-a.log" in logs and all(m == 0o600 for m in logs.values()), logs
        # recorded once the last wave answered /health: at about the time we saw it
        started = wait_for(
            lambda: [
                e
                for e in look.store.list_events(None, limit=200)
                if e.action == "boot_start" and e.actor == "health"
            ]
        )
        assert len(started) == 1 and started[0].detail["started"] == 2
        assert look.proc("c").state == "STOPPED" and look.proc("c").start == 0
        assert {n: look.session(n).port for n in ports} == ports

        # a second serve refuses: one supervisord per state dir
        again = env.cli("serve", check=False)
        assert again.returncode == 69 and "already runs" in again.stderr
        look.close()
        env.cli("shutdown")
        assert serve.wait(timeout=60) == 0, serve.stderr.read() if serve.stderr else ""
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()


def test_alerts_raised_once_cleared_once_delivered_once(make_env: Callable[..., Env]) -> None:
    with Receiver() as receiver:
        env = make_env(
            max_sessions=2,
            **FAST,
            ZAPVISOR_ALERT_RAM_PERCENT="1",
            ZAPVISOR_ALERT_WEBHOOK_URL=receiver.url,
        )
        env.cli("apply")  # starts supervisord, and the monitor in it
        look = Look(env)
        monitor = wait_for(lambda: (m := look.monitor()) and m.state == "RUNNING" and m)
        wait_for(lambda: receiver.events("ram") == ["alert.raised"], timeout=30)
        active = env.json("alerts")
        assert [a["key"] for a in active] == ["ram"] and active[0]["active"] is True
        assert "threshold 1%" in active[0]["message"]
        assert "ram" in env.cli("alerts").stdout

        checks = look.checks()
        wait_for(lambda: look.checks() >= checks + 4)  # it still holds: nothing new
        assert len(look.store.list_alerts(active=None)) == 1
        assert receiver.events("ram") == ["alert.raised"]

        # the operator raises the threshold: the monitor reloads it and clears the alert
        env.extra["ZAPVISOR_ALERT_RAM_PERCENT"] = "100"
        env.cli("apply")
        wait_for(lambda: receiver.events("ram") == ["alert.raised", "alert.cleared"], timeout=30)
        assert env.json("alerts") == []
        history = env.json("alerts", "--all")
        assert len(history) == 1 and history[0]["cleared_at"] and not history[0]["active"]
        checks = look.checks()
        wait_for(lambda: look.checks() >= checks + 4)
        assert receiver.events("ram") == ["alert.raised", "alert.cleared"], "delivered once"
        assert look.monitor_proc().pid == monitor.pid, "a settings change did not restart it"
        look.close()
