"""A runner whose neonize client cannot be ended still stops within supervisord's stop
budget with everything flushed, and a recycled runner is restarted at once without
counting as a crash.

Real: the runner processes, the store, the webhook outbox, the API, supervisord and
the health monitor. Stands in: neonize's client in the first two tests
(tests/neonize_standin.py: its connect call blocks a real thread forever, as an
unpaired client's does; WhatsApp's servers cannot be reached here); the third uses the
sim connector's recycle fault, which takes the runner's real recycle path.
"""

from __future__ import annotations

import configparser
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from ecosystem import runner_client
from ecosystem.names import program_name
from ecosystem.states import RUNNER_RECYCLE_EXIT
from ecosystem.store.sqlite import SQLiteStore
from runner.connectors.neonize_handover import HANDOVER
from tests.conftest import Env, wait_for
from tests.health_helpers import FAST, Look
from tests.receiver import Receiver

pytestmark = pytest.mark.e2e

STOP_BUDGET = 10.0
"""supervisord's stopwaitsecs for runners (supervisord.conf.j2): SIGKILL after that."""
DEAD_HOOK = "http://127.0.0.1:9/hook"


def standin(env: Env, name: str, port: int, **extra: str) -> subprocess.Popen[str]:
    args = ["--home", str(env.home), "--session", name, "--port", str(port)]
    with open(env.home / "logs" / f"standin-{name}.log", "a") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.neonize_standin", *args],
            env=env.vars | extra,
            cwd=os.getcwd(),
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )


def exit_within(proc: subprocess.Popen[str], budget: float) -> tuple[int, float]:
    start = time.monotonic()
    try:
        code = proc.wait(timeout=budget)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"the runner did not exit within {budget} s") from None
    return code, time.monotonic() - start


def outbox(env: Env, name: str) -> list[tuple[str, Any]]:
    store = SQLiteStore(env.home / "zapvisor.db")
    try:
        # newest first from the store; created_at keeps milliseconds, and two events
        # emitted together (a status change and its QR) share one: ties stay in the
        # order they were written
        rows = sorted(reversed(store.list_webhooks(name)), key=lambda r: r.created_at)
        return [(r.event, r.payload.get("status")) for r in rows]
    finally:
        store.close()


def create(env: Env, name: str, hook: str = DEAD_HOOK) -> tuple[int, str]:
    """A neonize session created by the CLI and left stopped: the test runs its runner."""
    shown = env.json("create", name, "--stopped", "--webhook-url", hook)
    assert shown["connector"] == "neonize"
    return shown["port"], env.cli("token", name).stdout.strip()


def test_stop_during_the_qr_phase_exits_in_budget_with_the_outbox_flushed(zv: Env) -> None:
    """The blocked call holds the loop's whole default executor (one thread, as the QR
    loops of expired clients would hold it): webhooks are delivered all the same."""
    receiver = Receiver()
    try:
        port, _ = create(zv, "qr", receiver.url)
        proc = standin(zv, "qr", port, ZV_STANDIN_EXECUTOR_THREADS="1")
        wait_for(lambda: zv.json("show", "qr")["status"] == "waiting_scan", timeout=30)
        delivered = wait_for(lambda: receiver.of("qr_code"), timeout=30)
        assert delivered[0].payload["qrCode"].startswith("data:image/png;base64,")
    finally:
        receiver.down()
    proc.send_signal(signal.SIGTERM)
    code, took = exit_within(proc, STOP_BUDGET)
    assert code == 0, "a stop, not a crash"
    shown = zv.json("show", "qr")
    assert shown["status"] == "disconnected" and shown["qr_payload"] is None
    assert outbox(zv, "qr") == [
        ("connection_change", "waiting_scan"),
        ("qr_code", None),
        ("connection_change", "disconnected"),
    ], "the stop's own event reached the outbox before the process left"
    text = (zv.home / "logs" / "standin-qr.log").read_text()
    assert '"event": "hard_exit"' in text, "the blocked thread was left behind, not joined"
    assert took < STOP_BUDGET


def test_the_qr_window_ends_in_a_recycle_and_the_next_runner_waits_for_start(
    zv: Env,
) -> None:
    port, token = create(zv, "win")
    # a 1 s QR window: the runner starts, shows a QR, recycles itself
    proc = standin(zv, "win", port, ZV_STANDIN_QR_SECONDS="1")
    code, _ = exit_within(proc, 60)
    assert code == RUNNER_RECYCLE_EXIT
    shown = zv.json("show", "win")
    assert shown["status"] == "disconnected" and "not scanned" in shown["last_error"]
    assert (zv.home / "tokens" / "win" / HANDOVER).is_file()
    before = outbox(zv, "win")
    assert before == [
        ("connection_change", "waiting_scan"),
        ("qr_code", None),
        ("connection_change", "disconnected"),
    ], "flushed before it left"

    # what supervisord does next: a fresh runner, which shows no QR until asked
    proc = standin(zv, "win", port)
    try:
        wait_for(lambda: runner_client.healthy("127.0.0.1", port, timeout=1.0), timeout=30)
        wait_for(lambda: not (zv.home / "tokens" / "win" / HANDOVER).exists())
        shown = zv.json("show", "win")
        assert shown["status"] == "disconnected" and "not scanned" in shown["last_error"]
        assert ("qr_code", None) not in outbox(zv, "win")[len(before) :]
        status, _ = runner_client.call("127.0.0.1", port, "/start", method="POST", token=token)
        assert status == 200
        wait_for(lambda: zv.json("show", "win")["status"] == "waiting_scan", timeout=15)
    finally:
        proc.send_signal(signal.SIGTERM)
        code, _ = exit_within(proc, STOP_BUDGET)
    assert code == 0


def test_a_recycled_runner_is_restarted_at_once_and_only_a_loop_parks(
    make_env: Callable[..., Env],
) -> None:
    env = make_env(
        max_sessions=2,
        **FAST,
        ZAPVISOR_CRASH_WINDOW="120",
        ZAPVISOR_CRASH_MAX_EXITS="4",
        ZAPVISOR_BACKOFF_BASE="0.5",
        ZAPVISOR_BACKOFF_MAX="10",
    )
    fault = json.dumps({"sim": {"recycle_after_seconds": 2}})
    env.cli("create", "rec", "--connector", "sim", "--timing-config", fault)
    conf = configparser.RawConfigParser()
    conf.read(env.home / "supervisord.conf")
    assert conf[f"program:{program_name('rec')}"]["exitcodes"] == f"0,{RUNNER_RECYCLE_EXIT}"
    look = Look(env)
    first = wait_for(lambda: look.events("rec", "recycle"), timeout=60)[0]
    assert first.detail["restart_in"] == 0, "restarted at once"
    wait_for(lambda: look.health("rec").restarts >= 1)
    h = look.health("rec")
    assert h.exits == 0 and not look.events("rec", "crash"), "a recycle is not a crash"
    assert h.last_restart_reason and h.last_restart_reason.startswith("recycled: ")

    # a runner that recycles right after every start is a loop: backed off, parked
    h = wait_for(lambda: (x := look.health("rec")).parked_at is not None and x, timeout=90)
    assert h.exits == 0
    delays = [e.detail["restart_in"] for e in look.events("rec", "recycle")]
    assert delays[:3] == [0, 0.5, 1.0]
    wait_for(lambda: look.session("rec").desired_state == "stopped")
    assert look.session("rec").last_error == "crash loop: 4 exits in 2 minutes"
    look.close()
