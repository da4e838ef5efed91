"""A PostgreSQL database made by an older zapvisor (schema v1: sessions only), upgraded in
place by `db migrate`; and the health monitor on it before and after."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from ecosystem.errors import SchemaMissing
from ecosystem.health.listener import build
from ecosystem.models import NewSession
from ecosystem.settings import settings_from_vars
from ecosystem.store import migrations
from ecosystem.store import pgcommon as pg
from ecosystem.store.postgres import PostgresStore
from ecosystem.webhook_events import new_event
from tests.conftest import PgCluster


def _v1_database(cluster: PgCluster, name: str) -> str:
    cluster.server.supabase_like_database(name)
    dsn = cluster.dsn(name)
    first = migrations.load("postgres")[0]
    with psycopg.connect(dsn, autocommit=True) as conn, conn.transaction():
        conn.execute(pg.BOOTSTRAP_SQL.encode())
        conn.execute(first.sql.encode())
        conn.execute(
            f"INSERT INTO {pg.VERSION_TABLE} (version, name) VALUES (%s, %s)".encode(),
            (first.version, first.name),
        )
    return dsn


def test_a_v1_database_upgrades_and_the_monitor_moves_onto_it(
    pg_cluster: PgCluster, tmp_path: Path
) -> None:
    name = f"zv_v1_{id(tmp_path) % 100_000}"
    dsn = _v1_database(pg_cluster, name)
    store = PostgresStore(dsn)
    try:
        store.create_session(
            NewSession(name="alpha", ai_config={"history": 1}),
            host="h1",
            ports=range(3001, 3011),
            exclude_ports=(),
            max_sessions=10,
            actor="old",
        )
        settings = settings_from_vars({"ZAPVISOR_HOME": tmp_path, "ZAPVISOR_DATABASE_URL": dsn})

        # before `db migrate`: the monitor keeps its records in memory, and says why;
        # the outbox says what to do
        monitor, _, probe = build(settings)
        assert not isinstance(monitor.store, PostgresStore)
        assert probe is not None and probe() is False
        with pytest.raises(SchemaMissing, match="zapvisor db migrate"):
            store.enqueue_webhook(new_event("alpha", "qr_code", {}))

        shipped = [f"{m.version:04d}_{m.name}" for m in migrations.load("postgres")]
        assert store.migrate() == shipped[1:]  # 0002_webhooks onwards
        kept = store.get_session("alpha")
        assert kept.ai_config == {"history": 1} and kept.webhook_events is None
        assert kept.auth == "local" and not kept.can_fail_over  # its auth is in files
        assert probe() is True, "the running monitor notices and restarts onto the store"
        monitor.store.close()
        monitor, _, probe = build(settings)
        assert isinstance(monitor.store, PostgresStore) and probe is None
        store.update_session("alpha", {"webhook_events": ["error"]}, actor="t", action="webhook")
        assert store.get_session("alpha").webhook_events == ["error"]
        monitor.store.close()
    finally:
        store.close()
        pg_cluster.drop_database(name)
