"""What `list` says: statuses read after the supervisord it started, the status a
runner reported inside supervisord's first second, and PARKED (as the app shows it)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from datetime import timedelta

import pytest

from ecosystem.liveview import Poller
from ecosystem.models import Session, utcnow
from ecosystem.orchestrator import Orchestrator
from ecosystem.states import ProcessState, Status
from ecosystem.supctl.rpc import ProcessInfo
from ecosystem.views import SessionView
from tests.conftest import Env, wait_for
from tests.health_helpers import FAST
from tui.format import status_text


@pytest.mark.e2e
def test_a_list_that_starts_supervisord_shows_what_the_runners_report(zv: Env) -> None:
    zv.cli("create", "alpha", "--connector", "sim")
    zv.cli("qr", "alpha", "--wait", "20")
    zv.cli("sim-scan", "alpha")
    zv.cli("shutdown")  # the runner's last word in the store: disconnected
    rows = zv.json("list")
    assert rows[0]["pid"] and rows[0]["process_state"] in ("STARTING", "RUNNING")
    # what this runner reported (it reconnects from its saved auth), not the old one's
    assert rows[0]["status"] in ("initializing", "connected"), rows[0]


@pytest.mark.e2e
def test_list_shows_parked_like_the_app(make_env: Callable[..., Env]) -> None:
    env = make_env(max_sessions=1, **FAST, ZAPVISOR_CRASH_MAX_EXITS="2")
    crash = json.dumps({"sim": {"crash_after_seconds": 0.5}})
    env.cli("create", "loop", "--connector", "sim", "--timing-config", crash, check=False)
    wait_for(lambda: env.json("show", "loop")["parked_at"], timeout=60)
    table = env.cli("list").stdout.splitlines()
    column = table[0].split().index("STATUS")  # after HOST when the list has one
    row = next(ln for ln in table if ln.startswith("loop"))
    assert row.split()[column] == "PARKED", row


def test_a_runner_that_reported_inside_startsecs_shows_its_status() -> None:
    """supervisord says STARTING for a second after the spawn, while `create` already
    said "runner up": a runner that reported since its start shows its status."""
    now = utcnow()
    start = int(now.timestamp()) - 1
    proc = ProcessInfo("wa-a", ProcessState.STARTING, 42, start, start + 1, 0, 0, "", "")
    fresh = Session(name="a", host="h", port=3001, status=Status.WAITING_SCAN, updated_at=now)
    assert SessionView(fresh, proc).display_status == "waiting_scan"
    stale = fresh.model_copy(update={"updated_at": now - timedelta(minutes=5)})
    assert SessionView(stale, proc).display_status == "STARTING"


@pytest.mark.e2e
def test_the_apps_live_view_shows_a_taken_port_like_list(zv: Env) -> None:
    """A stopped session whose port another process holds: the app's STATUS column says
    PORT TAKEN and who holds it, as `list` does, and goes back once the port is free."""
    zv.cli("create", "beta", "--connector", "sim", "--stopped")
    port = zv.json("show", "beta")["port"]
    poller = Poller(Orchestrator(zv.settings()))
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", port))
    blocker.listen()
    try:
        view = poller.tick().view("beta")
        assert view is not None and status_text(view).plain == "PORT TAKEN"
        assert f"(pid {os.getpid()})" in (view.port_holder or ""), view.port_holder
    finally:
        blocker.close()
    view = poller.tick().view("beta")
    assert view is not None and status_text(view).plain == "STOPPED"
