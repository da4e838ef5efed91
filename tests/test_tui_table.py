"""The sessions table redraws a row when, and only when, what it shows changed: each
line is cached on its own row (tui/widgets/sessions_table.py), so a stale line would
stay on screen. Rows on screen follow every refresh, rows off screen as soon as a
scroll brings them on screen, and the cursor's line moves with the cursor.

Drawing only, so fixed data stands in for the store, supervisord and psutil
(tests/tui_fixed.py), changed between refreshes; the same table against a real
supervisord and real runners is tested in tests/test_tui_sessions.py.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from functools import partial
from pathlib import Path

from ecosystem.liveview import Snapshot
from ecosystem.orchestrator import Orchestrator
from ecosystem.settings import make_settings
from tests.tui_fixed import NOW, FixedPoller, crowded_snapshot
from tests.tui_helpers import screen_text, until
from tui.app import ZapvisorApp
from tui.screens.sessions import SessionsScreen
from tui.widgets.sessions_table import OFFSCREEN_EVERY, SessionsTable


class SteppedPoller(FixedPoller):
    """The crowded snapshot, as the test last set it."""

    snap: Snapshot = crowded_snapshot(40)

    def tick(self) -> Snapshot:
        return replace(self.snap, _by_name={})  # each tick a new fact, as a real one


def with_cpu(snap: Snapshot, name: str, cpu: float) -> Snapshot:
    view = snap.view(name)
    assert view is not None and view.pid is not None
    procs = dict(snap.procs)
    procs[view.pid] = replace(procs[view.pid], cpu_percent=cpu)
    return replace(snap, procs=procs, _by_name={})


def line_of(app: ZapvisorApp, name: str) -> str:
    return next((line for line in screen_text(app).splitlines() if name in line), "")


def test_changed_rows_are_redrawn_on_and_off_screen_and_the_cursor_line_moves(
    tmp_path: Path,
) -> None:
    orch = Orchestrator(make_settings(home=tmp_path / "home", host_id="vps-sp-01"))
    poller = SteppedPoller(orch)
    app = ZapvisorApp(orch, poller=poller, clock=lambda: NOW, blink=False, refresh_seconds=3600)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:

            async def refresh(snap: Snapshot) -> None:
                poller.snap = snap
                before = app.snapshot
                app.request_refresh()
                await until(pilot, lambda: app.snapshot is not before, what="the refresh")

            def shows(name: str, cpu: str) -> bool:
                return f" {cpu} " in line_of(app, name)

            home = app.screen
            assert isinstance(home, SessionsScreen)
            table = home.query_one(SessionsTable)
            await until(pilot, lambda: len(table.names) == 47, what="the rows")
            await until(pilot, lambda: "cliente-010" in screen_text(app), what="painted")
            assert " 1.0 " in line_of(app, "cliente-010")
            untouched = line_of(app, "cliente-011")

            # a row on screen: redrawn at each refresh that changes it (twice: the
            # first also follows the table's settling), its neighbours as they were
            snap = poller.snap
            for cpu in ("42.5", "43.5"):
                snap = with_cpu(snap, "cliente-010", float(cpu))
                await refresh(snap)
                await until(pilot, partial(shows, "cliente-010", cpu), what=cpu)
                assert line_of(app, "cliente-011") == untouched
            # the refreshes read the CPU and RSS of the rows on screen every time only
            shown = app.orch.shown_sessions
            assert shown is not None and "cliente-010" in shown and "cliente-047" not in shown
            assert len(shown) < len(table.names) and shown == frozenset(table.on_screen())

            # a row off screen (drawn once before): as the last refresh has it, when
            # scrolled to (the rows off screen are formatted every OFFSCREEN_EVERY only)
            table.scroll_end(animate=False)
            await until(pilot, lambda: " 1.0 " in line_of(app, "cliente-047"), what="the end")
            table.scroll_home(animate=False)
            await until(pilot, lambda: "cliente-001" in screen_text(app), what="the top")
            snap = with_cpu(snap, "cliente-047", 77.5)
            await refresh(snap)
            assert OFFSCREEN_EVERY > 1 and " 1.0 " in table.get_row("cliente-047")[0].plain
            table.scroll_end(animate=False)
            await until(pilot, lambda: " 77.5 " in line_of(app, "cliente-047"), what="77.5")
            # scrolled: the next refreshes read the rows now shown
            shown = app.orch.shown_sessions
            assert shown is not None and "cliente-047" in shown and "cliente-010" not in shown
            table.scroll_home(animate=False)
            await until(pilot, lambda: "cliente-001" in screen_text(app), what="the top")

            # the cursor's line follows the cursor, and the line it left is plain again
            def cursor_rows() -> list[int]:
                """The table lines drawn on another background than most rows."""
                grounds = {}
                for y, strip in enumerate(home._compositor.render_strips()):
                    named = [s for s in strip if "cliente" in s.text]
                    if named and named[0].style is not None:
                        grounds[y] = named[0].style.bgcolor
                common = Counter(grounds.values()).most_common(1)[0][0]
                return [y for y, ground in grounds.items() if ground != common]

            await until(pilot, lambda: len(cursor_rows()) == 1, what="one cursor line")
            first = cursor_rows()[0]
            await pilot.press("down")
            await until(pilot, lambda: cursor_rows() == [first + 1], what="the cursor moved")

    asyncio.run(scenario())
