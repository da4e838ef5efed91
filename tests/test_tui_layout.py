"""What an operator over SSH at 80x24 must be able to read: the sessions table whole
when it has more rows than the screen (and while filtering), the config form's fields
and buttons, and a log pane that follows the end unless scrolled up.

Layout only, so fixed data stands in for the store, supervisord and psutil
(tests/tui_fixed.py); the same screens against a real supervisord and real runners
are tested in tests/test_tui_sessions.py, test_tui_create.py and test_tui_health.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from textual.app import App, ComposeResult
from textual.widgets._toast import Toast

from ecosystem.liveview import Snapshot
from ecosystem.orchestrator import Orchestrator
from ecosystem.settings import make_settings
from tests.tui_fixed import NOW, FixedPoller, crowded_app, fixed_app, fixed_snapshot
from tests.tui_helpers import screen_text, until
from tui.app import ZapvisorApp
from tui.dialogs.config import ConfigForm
from tui.screens.session import SessionScreen
from tui.screens.sessions import SessionsScreen
from tui.widgets.facts import ConfigSummary
from tui.widgets.key_bar import KeyBar
from tui.widgets.log_pane import MAX_LINES, LogPane
from tui.widgets.sessions_table import SessionsTable

HEADER = "NAME        STATUS       PORT   PID UPTIME RST CPU%   RSS PHONE         ACTIVE"


def test_a_long_table_keeps_every_column_at_80_columns(tmp_path: Path) -> None:
    app = crowded_app(tmp_path / "home")  # 47 sessions: the table scrolls

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            home = app.screen
            assert isinstance(home, SessionsScreen)
            table = home.query_one(SessionsTable)
            await until(pilot, lambda: len(table.names) == 47, what="the rows")
            await until(pilot, lambda: table.show_vertical_scrollbar, what="a laid-out table")
            await until(pilot, lambda: "5511987654321" in screen_text(app), what="painted")
            lines = screen_text(app).splitlines()
            assert lines[2].strip() == HEADER
            assert lines[3].rstrip().endswith("5511987654321  2m00s")
            assert "loja-norte  phone_disco… 3007" in lines[9]
            assert table.show_vertical_scrollbar and not table.show_horizontal_scrollbar

            # the filter box takes a row, not columns
            await pilot.press("slash", "l", "o")
            await until(pilot, lambda: table.names == ["loja-centro", "loja-norte"])
            await until(pilot, lambda: "5531998877665" in screen_text(app).splitlines()[4])
            lines = screen_text(app).splitlines()
            assert lines[3].strip() == HEADER
            assert lines[4].rstrip().endswith("5531998877665  5h00m")
            assert not table.show_horizontal_scrollbar
            await pilot.press("escape")

            # wider: statuses whole; back to 80: cut again, nothing to scroll sideways
            await pilot.resize_terminal(120, 24)
            await until(pilot, lambda: "phone_disconnected" in screen_text(app), what="wide")
            await pilot.resize_terminal(80, 24)
            await until(pilot, lambda: "phone_disco…" in screen_text(app), what="narrow")
            await until(pilot, lambda: screen_text(app).splitlines()[2].strip() == HEADER)
            assert not table.show_horizontal_scrollbar and table.virtual_size.width <= 80

    asyncio.run(scenario())


def test_the_config_form_fits_80x24(tmp_path: Path) -> None:
    app = fixed_app(tmp_path / "home")

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(
                pilot,
                lambda: (
                    isinstance(app.screen, SessionsScreen)
                    and app.screen.query_one(SessionsTable).names
                ),
                what="the rows",
            )
            await pilot.press("enter")
            await until(
                pilot, lambda: not isinstance(app.screen, SessionsScreen), what="the session"
            )
            await pilot.press("e")
            form = await until(pilot, lambda: isinstance(app.screen, ConfigForm) and app.screen)
            await until(pilot, lambda: "Save (ctrl+s)" in screen_text(app), what="the buttons")
            # the bot's fields first; in the raw JSON the last editor, reached with tab,
            # scrolls into view with its error line
            assert "outbound per minute" in "".join(
                str(label.render()) for label in form.query(".name")
            )
            await pilot.press("ctrl+r")
            await until(pilot, lambda: form.raw, what="the raw JSON")
            area = form.query_one("#timing_config")
            area.focus()
            area.text = '{"delay": '
            await pilot.press("ctrl+s")
            await until(pilot, lambda: "not valid JSON" in screen_text(app), what="the error")
            assert isinstance(app.screen, ConfigForm)
            shown = screen_text(app)
            assert "timing_config (JSON object)" in shown
            assert "not valid JSON" in shown
            assert "Save (ctrl+s)" in shown

    asyncio.run(scenario())


class _LogApp(App[None]):
    def compose(self) -> ComposeResult:
        yield LogPane(id="log")


def _lines(start: int, count: int) -> list[tuple[bool, str]]:
    return [(False, f"line {i}") for i in range(start, start + count)]


def test_the_log_follows_the_end_unless_scrolled_up_and_is_bounded() -> None:
    app = _LogApp()

    async def scenario() -> None:
        async with app.run_test(size=(80, 12)) as pilot:
            log = app.query_one(LogPane)
            log.add(_lines(0, 100))
            await pilot.pause()
            assert log.is_vertical_scroll_end and log.lines[-1] == "line 99"

            # scrolled up to read: new lines do not pull the view away
            log.scroll_to(y=10, animate=False)
            await pilot.pause()
            log.add(_lines(100, 20))
            await pilot.pause()
            assert log.scroll_y == 10 and log.lines[-1] == "line 119"

            # back at the end (the `end` key): following again
            await pilot.click(LogPane)
            await pilot.press("end")
            await pilot.pause()
            log.add(_lines(120, 5))
            await pilot.pause()
            assert log.is_vertical_scroll_end

            # a chatty runner: only the newest MAX_LINES are kept
            log.add(_lines(125, MAX_LINES + 500))
            await pilot.pause()
            assert log.line_count == MAX_LINES
            assert log.lines[-1] == f"line {125 + MAX_LINES + 499}"
            assert log.is_vertical_scroll_end

    asyncio.run(scenario())


class _LongConfigPoller(FixedPoller):
    """cliente-001 with a long description, webhook URL and JSON configs."""

    def tick(self) -> Snapshot:
        snap = fixed_snapshot()
        views = []
        for v in snap.views:
            if v.name == "cliente-001":
                session = v.session.model_copy(
                    update={
                        "description": "loja matriz, atendimento das 8h às 18h, " * 3,
                        "webhook_url": "https://hooks.example.com/zapvisor/cliente-001/" + "x" * 60,
                        "ai_config": {"model": "gpt-4o-mini", "prompt": "Você é... " * 20},
                        "timing_config": {"typing_ms": [800, 2500], "reply_delay_s": 3},
                    }
                )
                v = replace(v, session=session)
            views.append(v)
        return replace(snap, views=tuple(views))


def test_the_session_screen_at_80x24_shows_the_whole_config_and_a_log(tmp_path: Path) -> None:
    """Long config values take one line each (`e` shows them whole); the panels leave
    the log most of the screen; notifications stay above the key bar."""
    orch = Orchestrator(make_settings(home=tmp_path / "home", host_id="vps-sp-01"))
    app = ZapvisorApp(orch, poller=_LongConfigPoller(orch), clock=lambda: NOW, blink=False)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await until(pilot, lambda: app.snapshot is not None, what="the first refresh")
            app.open_session("cliente-001", "details")
            screen = await until(
                pilot,
                lambda: (
                    isinstance(app.screen, SessionScreen)
                    and app.screen.query(ConfigSummary)
                    and app.screen
                ),
                what="the session screen",
            )
            config = screen.query_one(ConfigSummary)
            await until(pilot, lambda: "│ connector" in screen_text(app), what="the config")
            text = screen_text(app)
            for label in ("connector", "description", "webhook", "ai_config", "timing"):
                assert f"│ {label}" in text, f"{label} is cut off:\n{text}"
            assert config.region.height == config.virtual_size.height, "nothing clipped"
            assert screen.query_one(LogPane).content_size.height >= 9

            bar = screen.query_one(KeyBar).region
            app.notify("a notification long enough to reach the bottom right", timeout=30)
            toast = await until(
                pilot,
                lambda: (
                    (found := list(app.screen.query(Toast))) and found[0].region.height and found[0]
                ),
                what="the notification drawn",
            )
            assert toast.region.bottom <= bar.y, (toast.region, bar)

    asyncio.run(scenario())
