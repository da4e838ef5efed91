"""The terminal app over two hosts, for real but without SSH (tests/fleet_local.py: the
real agent on local pipes, two supervisords, one real PostgreSQL): the HOST column, the
hosts screen, showing one host's sessions, and the session screen of a session on the
other host, its QR decoded off the screen and its log followed from there."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
from textual.widgets import Select

from ecosystem.models import NewSession
from tests.conftest import Env
from tests.fleet_local import LocalFleet, make_fleet
from tests.tui_helpers import decode_screen_qr, screen_as, screen_text, until
from tui.app import ZapvisorApp
from tui.dialogs.create import AUTOMATIC, CreateForm
from tui.screens.hosts import HostsScreen
from tui.screens.session import SessionScreen
from tui.screens.sessions import SessionsScreen
from tui.widgets.log_pane import LogPane

pytestmark = pytest.mark.e2e


@pytest.fixture
def fleet(make_env: Callable[..., Env], pg_dsn: str) -> Iterator[LocalFleet]:
    made = make_fleet(make_env, pg_dsn, remotes=1)
    yield made
    made.close()


def test_hosts_screen_host_column_and_a_remote_session(fleet: LocalFleet) -> None:
    orch = fleet.orchestrator()
    orch.create(NewSession(name="here", connector="sim"), host="host-a")
    orch.create(NewSession(name="there", connector="sim"), host="host-b")
    payload = orch.qr("there", wait=15).payload
    app = ZapvisorApp(orch, refresh_seconds=0.3, blink=False)

    async def scenario() -> None:
        async with app.run_test(size=(100, 40)) as pilot:
            await until(
                pilot,
                lambda: (
                    app.snapshot
                    and {v.name: v.process_state for v in app.snapshot.views}
                    == {"here": "RUNNING", "there": "RUNNING"}
                ),
                timeout=40,
                what="both hosts' sessions running in the app",
            )
            home = screen_as(app, SessionsScreen)
            await until(pilot, lambda: "HOST" in screen_text(app), what="the HOST column")
            rows = {line.split()[0]: line.split()[1] for line in screen_text(app).splitlines()
                    if line.strip().startswith(("here", "there"))}  # fmt: skip
            assert rows == {"here": "host-a", "there": "host-b"}

            # n: the create form offers the hosts, automatic placement first
            await pilot.press("n")
            form = screen_as(app, CreateForm)
            choice = form.query_one("#host", Select)
            assert choice.value == AUTOMATIC
            assert [v for _label, v in choice._options] == [AUTOMATIC, "host-a", "host-b"]
            await pilot.press("escape")
            assert app.screen is home

            # h: both hosts, answering, with their sessions and version
            await pilot.press("h")
            hosts = screen_as(app, HostsScreen)
            await until(
                pilot, lambda: "1 of" not in screen_text(app) and "2 of 2" in screen_text(app)
            )
            text = screen_text(app)
            assert "host-a" in text and "local" in text and "host-b" in text and "yes" in text
            # enter on host-b: back home, its sessions only
            hosts.query_one("#hosts").move_cursor(row=1)  # type: ignore[attr-defined]
            await pilot.press("enter")
            await until(pilot, lambda: app.screen is home and home.table.names == ["there"])

            # its session screen: the QR decodes, the log comes from host-b
            await pilot.press("enter")
            screen = screen_as(app, SessionScreen)
            assert screen.session_name == "there"
            await until(pilot, lambda: decode_screen_qr(app) == payload, what="the QR decoded")
            assert "on host-b" in screen_text(app)
            await pilot.press("l")
            log = screen.query_one(LogPane)
            await until(pilot, lambda: log.lines, what="log lines from host-b")
            await pilot.press("escape")

    asyncio.run(scenario())
