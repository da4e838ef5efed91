"""A store that stops answering must not freeze the app: the refresh hangs in its
worker, a banner says the data is stale, and every key keeps working."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from ecosystem.models import Session
from ecosystem.store.sqlite import SQLiteStore
from tests.conftest import Env
from tests.tui_helpers import top_screen, until
from tui.app import make_app
from tui.dialogs.create import CreateForm
from tui.screens.help import HelpScreen
from tui.screens.sessions import SessionsScreen
from tui.widgets.banner import DegradedBanner

pytestmark = pytest.mark.e2e


class HangingStore(SQLiteStore):
    """The real SQLite store, except that ``list_sessions`` blocks while ``hang`` is
    set, the way a store behind a dead network link would (the hang is simulated at
    the store boundary; everything else is real)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.hang = threading.Event()
        self.release = threading.Event()
        self.hung = threading.Event()

    def list_sessions(self, host: str | None = None) -> list[Session]:
        if self.hang.is_set():
            self.hung.set()
            self.release.wait(timeout=120)
        return super().list_sessions(host)


def test_keys_work_while_the_store_hangs(make_env: Any) -> None:
    env: Env = make_env()
    settings = env.settings()
    env.home.mkdir(parents=True, mode=0o700)
    store = HangingStore(settings.home / "zapvisor.db")
    store.migrate()
    app = make_app(settings, store=store, refresh_seconds=0.2, degraded_after=1.0, blink=False)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(
                pilot,
                lambda: app.snapshot and app.snapshot.supervisord_up and not app.booting,
                timeout=30,
                what=f"first refresh (degraded: {app.degraded!r})",
            )
            home = app.screen
            assert isinstance(home, SessionsScreen)
            banner = home.query_one(DegradedBanner)
            assert not banner.has_class("-shown")
            taken = app.snapshot.taken_at  # type: ignore[union-attr]

            store.hang.set()
            try:
                await until(pilot, store.hung.is_set, what="a refresh stuck in the store")
                await until(pilot, lambda: banner.has_class("-shown"), what="the banner")
                assert "has not answered" in app.degraded

                # keys are handled while the refresh is still stuck
                await pilot.press("question_mark")
                assert isinstance(top_screen(app), HelpScreen)
                await pilot.press("escape")
                await pilot.press("n")
                assert isinstance(top_screen(app), CreateForm)
                await pilot.press(*"Oops")
                assert app.screen.query_one("#name-error").has_class("-error")
                await pilot.press("escape")
                assert app.screen is home
                assert not store.release.is_set() and app.snapshot.taken_at == taken  # type: ignore[union-attr]
            finally:
                store.hang.clear()
                store.release.set()

            # the store answers again: fresh data, the banner goes
            await until(pilot, lambda: app.snapshot.taken_at != taken, what="a new refresh")  # type: ignore[union-attr]
            await until(pilot, lambda: not banner.has_class("-shown"), what="banner gone")

    asyncio.run(scenario())
