"""The create form to a paired session, driven by keys in the real app: a real
supervisord, a real sim runner, its QR decoded off the screen as drawn."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from textual.widgets import ContentSwitcher, Select, TextArea

from ecosystem.models import NewSession
from ecosystem.orchestrator import Orchestrator
from ecosystem.states import Status
from runner.connectors.sim_codes import sim_payload
from tests.conftest import Env
from tests.tui_helpers import decode_screen_qr, in_thread, top_screen, until
from tui.app import ZapvisorApp, make_app
from tui.dialogs.config import ConfigForm
from tui.dialogs.confirm import ConfirmDialog
from tui.dialogs.create import CreateForm
from tui.screens.session import SessionScreen
from tui.screens.sessions import SessionsScreen
from tui.widgets.log_pane import LogPane
from tui.widgets.qr import QRCode

pytestmark = pytest.mark.e2e


def _text(app: ZapvisorApp, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


async def _ready(pilot: Any, app: ZapvisorApp) -> None:
    await until(
        pilot,
        lambda: app.snapshot is not None and app.snapshot.supervisord_up and not app.booting,
        timeout=30,
        what=f"first refresh with supervisord up ({app.degraded!r}, "
        f"{[n.message for n in app._notifications]})",
    )


def test_the_create_form_checks_the_name_and_opens_the_new_session(make_env: Any) -> None:
    env: Env = make_env()
    app = make_app(env.settings(), refresh_seconds=0.3, blink=False)

    async def scenario() -> None:
        async with app.run_test(size=(100, 40)) as pilot:
            await _ready(pilot, app)
            await pilot.press("n")
            assert isinstance(top_screen(app), CreateForm)

            # an invalid name is refused inline, as it is typed and again on enter
            await pilot.press(*"Bad")
            error = app.screen.query_one("#name-error")
            assert error.has_class("-error")
            assert "invalid session name 'Bad'" in _text(app, "#name-error")
            await pilot.press("enter")
            assert isinstance(top_screen(app), CreateForm)
            assert app.orch.store.list_sessions() == []

            # fixed; the connector is neonize unless told: the simulated phone instead
            await pilot.press("backspace", "backspace", "backspace", *"alpha")
            assert not error.has_class("-error")
            connector = app.screen.query_one("#connector", Select)
            assert connector.value == "neonize"
            # the list opens with space (enter creates, as in every field)
            await pilot.press("tab", *"first one", "tab", "space", "down", "enter")
            assert connector.value == "sim"
            assert isinstance(top_screen(app), CreateForm), "picking one did not submit"
            # submitted with enter on the connector itself
            await pilot.press("enter")
            # app.screen is the new screen as soon as it is pushed; its widgets exist
            # once it is mounted (on a loaded machine, a few polls later)
            screen = await until(
                pilot,
                lambda: (
                    isinstance(app.screen, SessionScreen) and app.screen.is_mounted and app.screen
                ),
                timeout=40,
                what="the new session's screen",
            )
            assert screen.session_name == "alpha"
            created = app.orch.store.get_session("alpha")
            assert created.description == "first one" and created.connector == "sim"
            home = app.screen_stack[1]
            assert isinstance(home, SessionsScreen)
            await until(pilot, lambda: home.table.names == ["alpha"], what="the new row")

    asyncio.run(scenario())


async def _alpha_screen(pilot: Any, app: ZapvisorApp) -> SessionScreen:
    """The session screen of ``alpha`` (created before the app started)."""
    await _ready(pilot, app)
    app.open_session("alpha")
    screen: SessionScreen = await until(
        pilot,
        lambda: isinstance(app.screen, SessionScreen) and app.screen.is_mounted and app.screen,
        timeout=40,
        what="alpha's screen",
    )
    return screen


def _alpha(env: Env, **settings: Any) -> None:
    """``alpha`` created in-process: its runner gets these settings (runtime.env is
    written from them, not from the environment the test's own commands get)."""
    orch = Orchestrator(env.settings(**settings))
    try:
        orch.create(NewSession(name="alpha", connector="sim"))
    finally:
        orch.close()


def test_the_session_screen_draws_each_qr_and_turns_connected_on_a_scan(make_env: Any) -> None:
    env: Env = make_env(ZAPVISOR_SIM_QR_SECONDS="2")
    _alpha(env, sim_qr_seconds=2)  # a new QR every 2 s, not the 20 s default
    app = make_app(env.settings(sim_qr_seconds=2), refresh_seconds=0.3, blink=False)

    async def scenario() -> None:
        async with app.run_test(size=(100, 40)) as pilot:
            screen = await _alpha_screen(pilot, app)
            # the QR as drawn decodes to the payload the runner published (read together:
            # on a loaded machine the 2 s rotation may fall between two separate looks)
            qr = screen.query_one(QRCode)

            def drawn() -> str | None:
                payload = qr.payload
                return payload if payload and decode_screen_qr(app) == payload else None

            published = {sim_payload("alpha", seq) for seq in range(30)}
            first = await until(pilot, drawn, what="a QR code drawn whole")
            assert first in published
            assert "expires in" in _text(app, "#qr-caption")

            # rotation: a new payload replaces it on screen
            second = await until(pilot, lambda: (p := drawn()) != first and p, what="rotation")
            assert second in published
            assert screen.rotations >= 2

            # the simulated phone scans (from outside the app): the UI turns connected
            await in_thread(lambda: env.cli("sim-scan", "alpha"))
            await until(
                pilot,
                lambda: screen.view and screen.view.session.status == Status.CONNECTED,
                what="connected in the UI",
            )
            await pilot.pause()
            assert "connected" in _text(app, "#title")
            phone = app.orch.store.get_session("alpha").phone
            assert phone and phone in _text(app, "#title")
            assert app.screen.query_one("#body", ContentSwitcher).current == "details"

            # the log pane received the line the runner wrote when it paired
            log = screen.query_one(LogPane)
            await until(pilot, lambda: any("paired" in line for line in log.lines), what="log")
            assert any("new QR code" in line for line in log.lines)

    asyncio.run(scenario())


def test_config_is_checked_before_it_is_saved_and_d_deletes(make_env: Any) -> None:
    env: Env = make_env()
    _alpha(env)
    app = make_app(env.settings(), refresh_seconds=0.3, blink=False)

    async def scenario() -> None:
        async with app.run_test(size=(100, 40)) as pilot:
            await _alpha_screen(pilot, app)
            home = app.screen_stack[1]
            assert isinstance(home, SessionsScreen)
            # config, in the raw JSON: invalid JSON is refused inline, valid JSON is saved
            await pilot.press("e")
            assert isinstance(app.screen, ConfigForm)
            await pilot.press("ctrl+r")
            assert app.screen.raw
            area = app.screen.query_one("#ai_config", TextArea)
            area.text = '{"model": '
            await pilot.press("ctrl+s")
            assert isinstance(app.screen, ConfigForm)
            assert "not valid JSON" in _text(app, "#ai_config-error")
            area.text = '{"temperature": 5}'  # a wrong value is named as it is typed
            await pilot.pause()
            assert "ai_config.temperature" in _text(app, "#ai_config-error")
            await pilot.press("ctrl+s")
            assert isinstance(app.screen, ConfigForm)
            area.text = '{"model": "small", "temperature": 0.2}'
            await pilot.press("ctrl+s")
            await until(pilot, lambda: isinstance(app.screen, SessionScreen), what="saved")
            saved = await in_thread(lambda: env.json("show", "alpha"))
            assert saved["ai_config"] == {"model": "small", "temperature": 0.2}

            # d on the session screen: asks, deletes, and goes back to the table
            await pilot.press("d")
            assert isinstance(app.screen, ConfirmDialog) and app.screen.names == ["alpha"]
            await pilot.press("y")
            await until(pilot, lambda: app.screen is home, what="back home after delete")
            await until(pilot, lambda: home.table.names == [], what="row gone")
            assert app.orch.store.list_sessions() == []

    asyncio.run(scenario())
