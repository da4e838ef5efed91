"""The postgres store behind a transaction pooler (Supabase's Supavisor on port 6543,
PgBouncer in transaction mode): each transaction may run on another server connection,
so LISTEN cannot be used; watchers poll every second instead. No pooler can run here:
the store is told it is pooled (what a 6543 DSN does) and talks to the real PostgreSQL
the fixtures start."""

from __future__ import annotations

import threading

import psycopg
import pytest

from ecosystem.errors import StoreError
from ecosystem.models import NewSession
from ecosystem.store import pgcommon
from ecosystem.store.postgres import POOLED_POLL_INTERVAL, PostgresStore
from tests.conftest import PgCluster


def _create(store: PostgresStore, name: str) -> None:
    store.create_session(
        NewSession(name=name),
        host="h1",
        ports=range(3001, 3011),
        exclude_ports=(),
        max_sessions=10,
        actor="t",
    )


def _zapvisor_backends(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = 'zapvisor'"
        ).fetchone()
        return int(row[0]) if row else 0


def _sees_a_change(writer: PostgresStore, watcher: PostgresStore) -> bool:
    timer = threading.Timer(
        0.2, lambda: writer.set_runtime("alpha", {"phone": "5511"}, actor="runner")
    )
    timer.start()
    try:
        return watcher.wait_for_change(15)
    finally:
        timer.join()


def test_the_dsn_port_says_whether_a_transaction_pooler_is_in_between() -> None:
    pooled = PostgresStore(
        "postgresql://postgres.ref:pw@aws-0-sa-east-1.pooler.supabase.com:6543/postgres"
    )
    assert pooled.transaction_pooled is True
    assert pooled.poll_interval == POOLED_POLL_INTERVAL == 1.0
    assert pooled.live_updates == (
        "live updates by polling every 1 s (transaction pooler: no LISTEN)"
    )
    for session_mode in (
        "postgresql://postgres.ref:pw@aws-0-sa-east-1.pooler.supabase.com:5432/postgres",
        "postgresql://postgres:pw@db.ref.supabase.co:5432/postgres",
    ):
        direct = PostgresStore(session_mode)
        assert direct.transaction_pooled is False
        assert direct.live_updates == "live updates by LISTEN/NOTIFY"


def test_through_a_transaction_pooler_changes_are_polled_on_one_connection(
    pg_dsn: str,
) -> None:
    writer = PostgresStore(pg_dsn)
    watcher = PostgresStore(pg_dsn, transaction_pooled=True)
    try:
        _create(writer, "alpha")
        assert watcher.wait_for_change(0.3) is False  # baseline; nothing happened
        assert _sees_a_change(writer, watcher) is True
        # the watcher used its one connection: no second one was opened to LISTEN
        assert _zapvisor_backends(pg_dsn) == 2
        writer.delete_session("alpha", actor="t")
        assert watcher.wait_for_change(15) is True
    finally:
        writer.close()
        watcher.close()


def test_a_refused_listen_falls_back_to_polling_not_to_an_outage(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server or pooler that refuses LISTEN (a standby; Supavisor set to reject session
    state) answers everything else: the watcher polls and says why, and reports no
    outage. The refusal is made real by a channel name PostgreSQL rejects."""
    monkeypatch.setattr(pgcommon, "NOTIFY_CHANNEL", "zapvisor sessions")
    writer, watcher = PostgresStore(pg_dsn), PostgresStore(pg_dsn)
    try:
        _create(writer, "alpha")
        assert watcher.wait_for_change(0.3) is False
        assert watcher.live_updates.startswith(
            "live updates by polling every 1 s (LISTEN refused: syntax error"
        )
        assert _sees_a_change(writer, watcher) is True
    finally:
        writer.close()
        watcher.close()


def test_a_full_server_is_named_full_not_unreachable(pg_cluster: PgCluster, pg_dsn: str) -> None:
    """Every runner holds a connection: on a small plan the server fills up. The message
    says so and points at the pooler, and the store carries on once a slot is free (a
    role's CONNECTION LIMIT fills up the same way as max_connections)."""
    role, password = f"zv_full_{id(pg_dsn) % 100_000}", "zv-full-pw-4d2"
    dbname = pg_dsn.rsplit("/", 1)[1]
    pg_cluster.server.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}' CONNECTION LIMIT 1")
    try:
        pg_cluster.server.execute(f"GRANT SELECT ON whatsapp_sessions TO {role}", dbname)
        dsn = pg_cluster.dsn(dbname, user=role, password=password)
        store = PostgresStore(dsn)
        # another process took the last slot
        with psycopg.connect(dsn), pytest.raises(StoreError) as info:
            store.list_sessions()
        message = str(info.value)
        assert message.startswith(f"the postgres store at 127.0.0.1:{pg_cluster.server.port}/")
        assert "has no connection left for us" in message and "too many connections" in message
        assert "port 6543" in message and password not in message
        assert store.list_sessions() == []
        store.close()
    finally:
        pg_cluster.server.execute(f"REVOKE ALL ON whatsapp_sessions FROM {role}", dbname)
        pg_cluster.server.execute(f"DROP ROLE {role}")
