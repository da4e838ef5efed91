"""Moving a session from the terminal app (`m`), for real: two hosts on this machine
(their own state dirs, supervisords and health monitors) sharing a real PostgreSQL, a
sim session paired on one; the app runs as the operator of host a."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from ecosystem.settings import ENV_NAMES
from ecosystem.store.postgres import PostgresStore
from tests.conftest import Env, wait_for
from tests.failover_hosts import connected_on, host_vars
from tests.test_tui_health import notes
from tests.tui_helpers import screen_as, screen_text, until
from tui.app import make_app
from tui.dialogs.move import MoveDialog
from tui.screens.session import SessionScreen

pytestmark = pytest.mark.e2e


@pytest.fixture
def store(pg_store: PostgresStore) -> PostgresStore:
    return pg_store


def test_m_moves_a_session_to_the_host_picked_in_the_dialog(
    pg_dsn: str, make_env: Callable[..., Env], store: PostgresStore
) -> None:
    a = make_env(max_sessions=3, **host_vars(pg_dsn, "a"))
    b = make_env(max_sessions=3, **host_vars(pg_dsn, "b"))
    full = make_env(max_sessions=1, **host_vars(pg_dsn, "c-full"))
    a.cli("create", "moving", "--connector", "sim")
    a.cli("create", "pinned", "--connector", "sim", "--auth", "local", "--stopped")
    a.cli("qr", "moving", "--wait", "30")
    phone = a.json("sim-scan", "moving")["phone"]
    b.cli("apply")
    full.cli("create", "filler", "--connector", "sim", "--stopped")
    wait_for(lambda: {h.host for h in store.fleet_state().hosts if h.live} >= {"a", "b", "c-full"})
    by_var = {k: v for k, v in a.vars.items() if k in set(ENV_NAMES.values())}
    settings = a.settings(**{name: by_var[var] for name, var in ENV_NAMES.items() if var in by_var})
    app = make_app(settings, refresh_seconds=0.3, blink=False)

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: app.snapshot and app.snapshot.view("pinned"), timeout=30)
            app.open_session("pinned")
            await until(pilot, lambda: isinstance(app.screen, SessionScreen))
            await until(pilot, lambda: "local · pinned" in screen_text(app))
            await pilot.press("m")
            await until(pilot, lambda: "pinned cannot move" in notes(app))
            assert not isinstance(app.screen, MoveDialog)

            await pilot.press("escape")
            app.open_session("moving")
            await until(pilot, lambda: "store · failover" in screen_text(app))
            await pilot.press("m")
            dialog = await until(pilot, lambda: isinstance(app.screen, MoveDialog) and app.screen)
            await until(pilot, lambda: "c-full is full: 1 of MAX_SESSIONS 1" in screen_text(app))
            text = screen_text(app)
            assert text.index("b  0 sessions, 3 free") < text.index("c-full  1 sessions")
            assert screen_as(app, MoveDialog) is dialog
            await pilot.press("enter")  # b, the one host that can take it
            await until(pilot, lambda: "moved from a to b" in notes(app), timeout=90)
            # it runs on b now: gone from this host's screens
            await until(pilot, lambda: not isinstance(app.screen, SessionScreen))

    asyncio.run(scenario())
    moved = connected_on(store, "moving", {"b"})
    assert moved is not None and moved.phone == phone
