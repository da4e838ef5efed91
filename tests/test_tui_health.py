"""The health monitor in the app, for real: a sim runner that crashes a second after
every start, under a real supervisord running the real monitor. The table counts the
monitor's restarts, the app announces them, the parking and the alert it raises; the
alerts view lists the alert and opens its session, whose screen says why it is down;
`s` starts it again and the alert clears."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from typing import Any

import pytest
from rich.console import Console
from textual.css.query import NoMatches

from ecosystem.models import NewSession
from ecosystem.orchestrator import Orchestrator
from ecosystem.settings import ENV_NAMES, Settings
from tests.conftest import Env
from tests.tui_helpers import in_thread, screen_as, screen_text, top_screen, until
from tui.app import ZapvisorApp, make_app
from tui.screens.alerts import AlertsScreen
from tui.screens.session import SessionScreen
from tui.screens.sessions import SessionsScreen
from tui.widgets.facts import ProcessFacts

pytestmark = pytest.mark.e2e

FAST_MONITOR = {
    "health_interval": 0.5,
    "health_failures": 2,
    "health_timeout": 0.5,
    "crash_window": 120,
    "crash_max_exits": 3,
    "backoff_base": 0.3,
    "backoff_max": 2,
}
"""Checks twice a second; parks at the third exit within two minutes."""
CRASHING = {"sim": {"crash_after_seconds": 1}}


def env_with(make_env: Callable[..., Env], **fields: Any) -> tuple[Env, Settings]:
    """A private installation whose runners and monitor (runtime.env) and whose app
    (its Settings) see the same settings."""
    env = make_env(max_sessions=3, **{ENV_NAMES[k]: str(v) for k, v in fields.items()})
    return env, env.settings(**fields)


def notes(app: ZapvisorApp) -> str:
    return "\n".join(n.message for n in app._notifications)


def facts(app: ZapvisorApp) -> str:
    """The process panel of the session screen as plain text, one line per fact (read
    off the widget: at 80 columns the screen wraps the longer ones)."""
    try:
        panel = app.screen.query_one(ProcessFacts)
    except NoMatches:  # not mounted yet
        return ""
    console = Console(width=300, file=io.StringIO(), record=True)
    console.print(panel.content)
    return "\n".join(" ".join(line.split()) for line in console.export_text().splitlines())


def test_restarts_parking_alerts_and_unparking(make_env: Callable[..., Env]) -> None:
    _env, settings = env_with(make_env, **FAST_MONITOR)
    orch = Orchestrator(settings)
    try:
        orch.create(NewSession(name="calm", connector="sim"))
        orch.create(NewSession(name="loop", connector="sim", timing_config=CRASHING))
    finally:
        orch.close()
    app = make_app(settings, refresh_seconds=0.3, blink=False)
    app.poller.alerts_every = 0.5

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            home = app.screen
            assert isinstance(home, SessionsScreen)

            # the monitor restarts it after each crash: the table counts, the app says why
            await until(
                pilot,
                lambda: (
                    "loop: the health monitor restarted it (exited with status 1)" in notes(app)
                ),
                timeout=40,
                what="a restart announced",
            )
            await until(pilot, lambda: "PARKED" in screen_text(app), timeout=60, what="parked")
            view = app.snapshot.view("loop")  # type: ignore[union-attr]
            assert view is not None and view.parked and view.restarts == 2
            row = next(line for line in screen_text(app).splitlines() if "loop" in line)
            assert row.split()[1:3] == ["PARKED", str(view.session.port)]
            assert " 2 " in row, f"RST shows the monitor's count: {row!r}"
            assert "loop: parked: crash loop: 3 exits in 2 minutes" in notes(app)

            # the alert it raised: announced, counted in the header, listed by `a`
            await until(pilot, lambda: "1 alert" in screen_text(app), what="the header count")
            assert "alert: " in notes(app)
            await pilot.press("a")
            alerts = screen_as(app, AlertsScreen)
            await until(pilot, lambda: alerts.alerts, what="the alerts listed")
            (alert,) = alerts.alerts
            assert alert.session_name == "loop" and alert.active
            assert "critical" in screen_text(app)

            # enter opens its session: parked, why, the monitor's record
            await pilot.press("enter")
            screen = app.screen
            assert isinstance(screen, SessionScreen) and screen.session_name == "loop"
            shown = await until(pilot, lambda: "why down" in facts(app) and facts(app))
            assert "status PARKED since " in shown and "s starts it again" in shown
            assert "restarts 2 · last " in shown and "ago: exited with status 1" in shown
            assert "last exit status 1 at " in shown
            assert "why down crash loop: 3 exits in 2 minutes" in shown
            assert "sim fault: crash after 1 s" in shown, "its last stderr lines"
            # as drawn at 80x24 (where the panel's last rows are cut), why comes first
            panel = screen_text(app).split("─ log ─")[0]
            assert "why down" in panel and "sim fault" in panel, panel

            # fixed, then `s`: started, un-parked, the alert clears
            await in_thread(lambda: app.orch.configure("loop", {"timing_config": {}}))
            await pilot.press("s")
            await until(
                pilot,
                lambda: (
                    (v := app.snapshot.view("loop"))  # type: ignore[union-attr]
                    and not v.parked
                    and v.display_status == "waiting_scan"
                ),
                timeout=30,
                what="un-parked and running",
            )
            await pilot.press("escape")
            assert top_screen(app) is alerts
            await until(
                pilot, lambda: alerts.alerts and not alerts.alerts[0].active, what="cleared"
            )
            assert "cleared" in screen_text(app)
            await pilot.press("escape")
            await until(pilot, lambda: "no alerts" in screen_text(app), what="header clear")
            assert app.orch.store.get_health("loop").parked_at is None
            calm = await in_thread(lambda: app.orch.show("calm"))
            assert calm.restarts == 0 and calm.pid == app.snapshot.view("calm").pid  # type: ignore[union-attr]

    asyncio.run(scenario())
