"""`zapvisor shutdown` on a real supervisord with several sim runners: every program
is sent its stop at once and supervisord exits only once all of them have; afterwards
nothing listens on any session port, no runner or supervisord is left, every session
that ran says `disconnected` without a QR (the paired one keeps its phone), and a
session the operator had stopped is left as it was."""

from __future__ import annotations

import socket

import pytest

from ecosystem.orchestrator import Orchestrator
from tests.conftest import Env
from tests.conftest import _alive as alive

pytestmark = pytest.mark.e2e


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_shutdown_stops_every_runner_and_leaves_nothing_listening(zv: Env) -> None:
    for name in ("alpha", "bravo", "charlie", "delta"):
        zv.cli("create", name, "--connector", "sim")
    zv.cli("sim-scan", "bravo")
    zv.cli("stop", "delta")
    shown = {s["name"]: s for s in zv.json("list")}
    assert shown["bravo"]["status"] == "connected", shown["bravo"]
    assert shown["alpha"]["status"] == "waiting_scan", shown["alpha"]
    ports = [s["port"] for s in shown.values()]
    runners = [s["pid"] for s in shown.values() if s["pid"]]
    assert len(runners) == 3
    supervisord = zv.supervisord_pid()
    assert supervisord is not None

    out = zv.cli("shutdown").stdout
    assert out.strip() == "supervisord and every runner stopped"

    assert not [p for p in ports if _listening(p)]
    assert not [p for p in [*runners, supervisord] if alive(p)]  # zombies count as gone
    orch = Orchestrator(zv.settings(), actor="test")
    try:
        rows = {s.name: s for s in orch.store.list_sessions()}
    finally:
        orch.close()
    for name in ("alpha", "bravo", "charlie"):
        row = rows[name]
        assert (row.status, row.qr_payload, row.qr_expires_at) == ("disconnected", None, None)
    assert rows["bravo"].phone
    assert rows["delta"].status == shown["delta"]["status"]
    assert zv.cli("shutdown").stdout.strip() == "supervisord was not running"
