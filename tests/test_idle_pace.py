"""How often an idle runner writes the store: on a store only its host uses (SQLite) a
runner's lease lasts ONE_HOST_LEASE_SECONDS (renewed every third of it) and a sim
link beats every SIM_ONE_HOST_BEAT_SECONDS; on a shared store (PostgreSQL) both keep
ZAPVISOR_LEASE_SECONDS and SIM_BEAT_SECONDS, which failover relies on. Real stores,
runners built in-process (nothing is served)."""

from __future__ import annotations

import pytest

from ecosystem.lease import (
    ONE_HOST_LEASE_SECONDS,
    SIM_BEAT_SECONDS,
    SIM_ONE_HOST_BEAT_SECONDS,
    AuthKind,
)
from ecosystem.models import NewSession
from ecosystem.settings import Settings
from ecosystem.store import Store, open_store
from runner.core import Runner
from tests.conftest import Env

pytestmark = pytest.mark.e2e


def _runner(settings: Settings, store: Store, auth: AuthKind) -> Runner:
    store.create_session(
        NewSession(name="pace", connector="sim", auth=auth),
        host=settings.host_id,
        ports=range(settings.base_port, settings.base_port + settings.max_sessions),
        exclude_ports=(),
        max_sessions=settings.max_sessions,
        actor="test",
    )
    return Runner(settings, store, "pace", store.get_session("pace").port)


def test_on_sqlite_an_idle_runner_renews_and_beats_seldom(zv: Env) -> None:
    settings = zv.settings(lease_seconds=30)
    store = open_store(settings)
    store.migrate()
    try:
        runner = _runner(settings, store, AuthKind.STORE)
        assert runner.lease.timing.ttl == ONE_HOST_LEASE_SECONDS
        assert runner.lease.timing.renew_every == ONE_HOST_LEASE_SECONDS / 3
        assert runner.lease.required is False
        assert runner.sim_server is not None
        assert runner.sim_server.beat_every == SIM_ONE_HOST_BEAT_SECONDS
        runner.sim_server.shutdown()
    finally:
        store.close()


def test_on_a_shared_store_the_lease_and_the_beat_keep_their_pace(zv: Env, pg_dsn: str) -> None:
    settings = zv.settings(database_url=pg_dsn, lease_seconds=6)
    store = open_store(settings)
    try:
        runner = _runner(settings, store, AuthKind.STORE)
        assert runner.lease.timing.ttl == 6
        assert runner.lease.required is True
        assert runner.sim_server is not None
        assert runner.sim_server.beat_every == SIM_BEAT_SECONDS
        runner.sim_server.shutdown()
    finally:
        store.close()
