"""The sessions screen's keys in the real app, against a real supervisord and real sim
runners: restart, start/stop, marks and bulk actions, delete, logout, filter, the
palette, help, and notifications of state changes."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import pytest
from textual.command import CommandList, CommandPalette

from ecosystem.models import NewSession
from ecosystem.orchestrator import Orchestrator
from ecosystem.states import Status
from tests.conftest import Env
from tests.tui_helpers import in_thread, top_screen, until
from tui.app import ZapvisorApp, make_app
from tui.dialogs.confirm import ConfirmDialog
from tui.screens.help import HelpScreen
from tui.screens.session import SessionScreen
from tui.screens.sessions import SessionsScreen
from tui.widgets.log_pane import LogPane

pytestmark = pytest.mark.e2e
NAMES = ["alpha", "bravo", "carol"]


def _created(env: Env, names: list[str]) -> None:
    orch = Orchestrator(env.settings())
    try:
        for name in names:
            orch.create(NewSession(name=name, connector="sim"))
    finally:
        orch.close()


def _pids(app: ZapvisorApp) -> dict[str, int | None]:
    assert app.snapshot is not None
    return {v.name: v.pid for v in app.snapshot.views}


def _pss(app: ZapvisorApp, name: str) -> int | None:
    snap = app.snapshot
    view = snap.view(name) if snap else None
    proc = snap.proc(view) if snap and view else None
    return proc.pss if proc else None


def _state(app: ZapvisorApp, name: str) -> str | None:
    view = app.snapshot.view(name) if app.snapshot else None
    return view.display_status if view else None


def _notes(app: ZapvisorApp) -> list[str]:
    return [n.message for n in app._notifications]


async def _home(pilot: Any, app: ZapvisorApp, names: list[str]) -> SessionsScreen:
    await until(
        pilot,
        lambda: (
            app.snapshot
            and not app.booting
            and all(v.process_state == "RUNNING" for v in app.snapshot.views)
            and [v.name for v in app.snapshot.views] == names
        ),
        timeout=40,
        what="every session running in the app",
    )
    screen = app.screen
    assert isinstance(screen, SessionsScreen)
    await until(pilot, lambda: screen.table.names == names, what="the rows")
    return screen


async def _settled(pilot: Any, app: ZapvisorApp) -> None:
    await until(pilot, lambda: not app.busy, what="actions finished")


async def _cursor_to(pilot: Any, home: SessionsScreen, name: str) -> None:
    home.table.move_cursor(row=home.table.names.index(name))
    await pilot.pause()
    assert home.table.highlighted == name


def test_restart_stop_start_bulk_restart_and_delete(make_env: Any) -> None:
    env: Env = make_env()
    _created(env, NAMES)
    app = make_app(env.settings(), refresh_seconds=0.3, blink=False)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            home = await _home(pilot, app, NAMES)
            before = _pids(app)

            # r: alpha gets a new pid, the others keep theirs
            await _cursor_to(pilot, home, "alpha")
            # the second press finds it busy: refused, said so (the runner, frozen, does
            # not act on its stop until the test lets it, so the restart is under way)
            alpha = before["alpha"]
            assert alpha is not None
            os.kill(alpha, signal.SIGSTOP)
            try:
                await pilot.press("r")
                await until(pilot, lambda: "alpha" in app.busy, what="alpha busy")
                await pilot.press("r")
                assert any(n.startswith("still working on alpha") for n in _notes(app))
            finally:
                os.kill(alpha, signal.SIGCONT)
            await until(pilot, lambda: _pids(app)["alpha"] not in (None, before["alpha"]))
            after = _pids(app)
            assert after["bravo"] == before["bravo"] and after["carol"] == before["carol"]
            await until(pilot, lambda: any(n.startswith("alpha restarted") for n in _notes(app)))

            # s on a running session stops it (and it stays stopped); s again starts it
            await _cursor_to(pilot, home, "bravo")
            await pilot.press("s")
            await until(pilot, lambda: _state(app, "bravo") == "STOPPED", what="bravo stopped")
            assert app.orch.store.get_session("bravo").desired_state == "stopped"
            await pilot.press("s")
            await until(pilot, lambda: _pids(app)["bravo"] not in (None, before["bravo"]))
            assert home.table.highlighted == "bravo", "the refresh moved the cursor"
            await _settled(pilot, app)

            # space marks rows; r asks once for all of them, naming them; y restarts both
            pids = _pids(app)
            await _cursor_to(pilot, home, "alpha")
            await pilot.press("space", "space")
            assert home.marks == {"alpha", "bravo"}
            await pilot.press("r")
            dialog = app.screen
            assert isinstance(dialog, ConfirmDialog)
            assert dialog.question == "Restart 2 sessions?"
            assert dialog.names == ["alpha", "bravo"]
            assert "alpha, bravo" in str(dialog.query_one("#names").render())
            await pilot.press("y")
            await until(
                pilot,
                lambda: (
                    _pids(app)["alpha"] not in (None, pids["alpha"])
                    and _pids(app)["bravo"] not in (None, pids["bravo"])
                ),
                what="both marked sessions restarted",
            )
            assert _pids(app)["carol"] == pids["carol"]
            assert home.marks == set()

            # d asks first: cancelling changes nothing
            await _cursor_to(pilot, home, "carol")
            await pilot.press("d")
            assert isinstance(top_screen(app), ConfirmDialog)
            await pilot.press("escape")
            await until(pilot, lambda: app.screen is home, what="the dialog closed")
            await _settled(pilot, app)
            assert [s.name for s in app.orch.store.list_sessions()] == NAMES

            # confirmed with "also remove auth files": row, program and tokens/ all go
            tokens = app.orch.paths.token_dir("carol")
            tokens.mkdir(parents=True, exist_ok=True)
            port = app.orch.store.get_session("carol").port
            await pilot.press("d")
            dialog = app.screen
            assert isinstance(dialog, ConfirmDialog) and dialog.names == ["carol"]
            await pilot.click("#purge")
            await pilot.press("y")
            await until(pilot, lambda: home.table.names == ["alpha", "bravo"], what="row gone")
            # the row goes first (the store decides), the program and the auth after it
            await until(pilot, lambda: not tokens.exists(), what="auth removed")
            listing = await in_thread(lambda: env.json("list"))
            assert [s["name"] for s in listing] == ["alpha", "bravo"]
            assert port not in [s["port"] for s in listing]

    asyncio.run(scenario())


def test_filter_palette_screens_logout_and_notifications(make_env: Any) -> None:
    env: Env = make_env()
    _created(env, ["alpha", "bravo"])
    app = make_app(env.settings(), refresh_seconds=0.3, blink=False)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            home = await _home(pilot, app, ["alpha", "bravo"])

            # / filters by name, status or phone; escape clears it
            await pilot.press("slash", *"rav")
            assert home.table.names == ["bravo"]
            await pilot.press("enter")
            assert home.table.has_focus and home.table.names == ["bravo"]
            await pilot.press("escape")
            assert home.table.names == ["alpha", "bravo"]
            await pilot.press("slash", *"waiting")
            assert home.table.names == ["alpha", "bravo"]
            await pilot.press("escape")

            # ? help, escape back
            await pilot.press("question_mark")
            assert isinstance(top_screen(app), HelpScreen)
            await pilot.press("escape")
            assert app.screen is home

            # ctrl+p: the palette restarts a session by name
            bravo = _pids(app)["bravo"]
            await pilot.press("ctrl+p")
            palette = await until(
                pilot, lambda: isinstance(app.screen, CommandPalette) and app.screen
            )
            await pilot.press(*"restart bravo")
            found = palette.query_one(CommandList)
            await until(
                pilot,
                lambda: found.option_count > 0 and found.highlighted is not None,
                what="the palette's match",
            )
            await pilot.press("enter")
            await until(pilot, lambda: _pids(app)["bravo"] not in (None, bravo), what="palette")

            # enter opens the session; q there shows its QR; escape comes back
            await _cursor_to(pilot, home, "alpha")
            await pilot.press("enter")
            screen = app.screen
            assert isinstance(screen, SessionScreen) and screen.session_name == "alpha"
            # its runner's PSS is read (at once), no other's: the table shows none
            assert app.orch.pss_sessions == frozenset({"alpha"})
            await until(pilot, lambda: _pss(app, "alpha") is not None, what="alpha's PSS")
            assert _pss(app, "bravo") is None
            await pilot.press("escape")
            assert app.screen is home
            assert app.orch.pss_sessions == frozenset()
            await pilot.press("q")
            assert isinstance(app.screen, SessionScreen) and app.screen.mode == "qr"
            await pilot.press("escape")

            # pair alpha, then l opens its log with the pairing line in it
            await in_thread(lambda: env.cli("sim-scan", "alpha"))
            await until(pilot, lambda: _state(app, "alpha") == "connected", what="paired")
            await until(pilot, lambda: "alpha: connected as" in " ".join(_notes(app)))

            # / finds a session by a piece of its phone number too
            phone = app.orch.store.get_session("alpha").phone
            assert phone
            await pilot.press("slash", *phone[-6:])
            assert home.table.names == ["alpha"]
            await pilot.press("escape")
            assert home.table.names == ["alpha", "bravo"]
            await pilot.press("l")
            log = app.screen.query_one(LogPane)
            assert log.has_focus
            await until(pilot, lambda: any("paired" in line for line in log.lines), what="log")
            await pilot.press("escape")

            # a session that goes `error` is announced: corrupt its auth and restart it
            auth = app.orch.paths.token_dir("alpha") / "sim-auth.json"
            auth.write_text("{not json")
            await pilot.press("r")
            await until(pilot, lambda: _state(app, "alpha") == "error", what="alpha in error")
            await until(pilot, lambda: any("alpha: error: auth in" in n for n in _notes(app)))

            # x logs it out after asking: auth gone, a new QR to scan
            await _settled(pilot, app)
            await pilot.press("x")
            dialog = app.screen
            assert isinstance(dialog, ConfirmDialog) and dialog.names == ["alpha"]
            await pilot.press("y")
            await until(pilot, lambda: _state(app, "alpha") == "waiting_scan", what="logged out")
            assert not auth.exists()
            session = app.orch.store.get_session("alpha")
            assert session.phone is None and session.status == Status.WAITING_SCAN

    asyncio.run(scenario())
