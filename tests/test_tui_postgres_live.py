"""The app on the postgres store refreshes when another operator changes a session, woken
by LISTEN/NOTIFY rather than by its tick (set to two minutes here, so only the push can
show the change), against a real PostgreSQL and a real supervisord."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from ecosystem.models import NewSession
from ecosystem.store.postgres import PostgresStore
from tests.conftest import Env
from tests.tui_helpers import in_thread, until
from tui.app import make_app

pytestmark = pytest.mark.e2e


def test_another_operators_change_shows_without_waiting_for_the_tick(
    pg_dsn: str, make_env: Callable[..., Env]
) -> None:
    env = make_env(ZAPVISOR_DATABASE_URL=pg_dsn)
    settings = env.settings(database_url=pg_dsn)
    app = make_app(settings, refresh_seconds=120, blink=False)
    other = PostgresStore(pg_dsn)

    def names() -> list[str]:
        return [v.name for v in app.snapshot.views] if app.snapshot else []

    def elsewhere(name: str) -> None:
        other.create_session(
            NewSession(name=name, connector="sim"),
            host=settings.host_id,
            ports=range(env.base_port, env.base_port + env.max_sessions),
            exclude_ports=(),
            max_sessions=env.max_sessions,
            actor="another-operator",
        )

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            assert app.orch.store.pushes_changes is True
            await until(pilot, lambda: app.snapshot and not app.booting, 60, "first refresh")
            assert names() == []
            await in_thread(lambda: elsewhere("cliente-001"))
            await until(pilot, lambda: names() == ["cliente-001"], 20, "the pushed change")
            await in_thread(lambda: other.delete_session("cliente-001", actor="another"))
            await until(pilot, lambda: names() == [], 20, "the pushed delete")

    try:
        asyncio.run(scenario())
    finally:
        other.close()
        app.orch.close()
