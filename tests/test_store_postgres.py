"""The postgres store against a real PostgreSQL started by the fixtures: migrations as an
operator applies them, row level security, live updates, and sessions whose runners
report to PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import psycopg
import pytest

from ecosystem.conversations import ChatMessage
from ecosystem.errors import ConfigError, StoreError
from ecosystem.health.model import AlertKind, NewAlert, SessionHealth
from ecosystem.models import NewSession
from ecosystem.store import migrations
from ecosystem.store.pgcommon import latest_version, redact
from ecosystem.store.postgres import PostgresStore
from ecosystem.webhook_events import new_event
from tests.conftest import Env, PgCluster, wait_for
from tests.pgserver import AUTHENTICATOR_PASSWORD, PASSWORD
from tests.test_store_pooler import _create

MIGRATIONS = [f"{m.version:04d}_{m.name}" for m in migrations.load("postgres")]
"""Every migration the package ships (each room's new one joins without touching this)."""
NEW_TABLES = ("webhook_outbox", "session_health", "alerts", "conversations", "messages")


def _scalar(dsn: str, query: str, *args: object) -> object:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query.encode(), args).fetchone()
        return row[0] if row else None


def test_db_migrate_and_status_as_an_operator(
    pg_cluster: PgCluster, make_env: Callable[..., Env]
) -> None:
    name = f"zv_ops_{id(pg_cluster) % 10_000}"
    pg_cluster.server.supabase_like_database(name)
    try:
        zv = make_env(ZAPVISOR_DATABASE_URL=pg_cluster.dsn(name))
        before = zv.json("db", "status")
        assert before["store"] == "postgres" and before["reachable"] is True
        assert before["version"] == 0 and before["pending"] == MIGRATIONS
        assert PASSWORD not in zv.cli("db", "status").stdout

        # using the store before migrating says what to do
        early = zv.cli("list", check=False)
        assert early.returncode == 69
        assert "no zapvisor schema" in early.stderr and "zapvisor db migrate" in early.stderr

        assert zv.json("db", "migrate")["applied"] == MIGRATIONS
        assert "schema up to date" in zv.cli("db", "migrate").stdout
        after = zv.json("db", "status")
        assert after["version"] == after["latest"] == latest_version() and after["pending"] == []
        assert MIGRATIONS[:5] == [
            "0001_init",
            "0002_webhooks",
            "0003_health",
            "0004_revoke_leftovers",
            "0005_hosts",
        ]
        applied = "SELECT string_agg(name, ',' ORDER BY version) FROM zapvisor_schema_migrations"
        names = ",".join(m.split("_", 1)[1] for m in MIGRATIONS)
        assert _scalar(pg_cluster.dsn(name), applied) == names
        # `db sql` has nothing left to print for this store but the wrapper
        assert "CREATE TABLE whatsapp_sessions" not in zv.cli("db", "sql").stdout
        assert "CREATE TABLE whatsapp_sessions" in zv.cli("db", "sql", "--all").stdout

        doctor = zv.json("doctor")
        store_check = next(c for c in doctor["checks"] if c["name"] == "store")
        assert doctor["store"] == "postgres" and store_check["level"] == "ok"
        assert store_check["detail"].startswith("postgres postgres@127.0.0.1:")
        assert f"schema v{latest_version()}" in store_check["detail"]
        assert store_check["detail"].endswith("; live updates by LISTEN/NOTIFY")
    finally:
        pg_cluster.drop_database(name)


@pytest.fixture
def seeded(pg_cluster: PgCluster, pg_dsn: str) -> str:
    """A migrated database holding a row in every table, and the DSN PostgREST uses
    (Supabase's `authenticator`, which switches to `anon` for the anon key)."""
    store = PostgresStore(pg_dsn)
    store.create_session(
        NewSession(name="alpha"),
        host="h1",
        ports=range(3001, 3011),
        exclude_ports=(),
        max_sessions=10,
        actor="t",
        api_token_hash="ab" * 32,
    )
    store.enqueue_webhook(new_event("alpha", "message_received", {"message": {"body": "pix"}}))
    store.save_health(SessionHealth(name="alpha", restarts=1, stderr_tail="secret-ish"))
    store.raise_alert(NewAlert(host="h1", key="ram", kind=AlertKind.RAM, message="RAM 91%"))
    store.add_message("alpha", "5511@c.us", ChatMessage(role="user", body="meu cpf é …"))
    store.close()
    dbname = pg_dsn.rsplit("/", 1)[1]
    return pg_cluster.dsn(dbname, user="authenticator", password=AUTHENTICATOR_PASSWORD)


def test_the_anon_key_has_no_right_on_any_table_sequence_or_function(seeded: str) -> None:
    """No session row, no token hash, no webhook payload, no health record or alert,
    no function of ours."""
    with psycopg.connect(seeded, autocommit=True) as conn:
        conn.execute("SET ROLE anon")
        for query in (
            "SELECT api_token_hash FROM whatsapp_sessions",
            "SELECT count(*) FROM session_events",
            "SELECT count(*) FROM zapvisor_schema_migrations",
            "SELECT zapvisor_delete_session('alpha', 'anon')",
            *(f"SELECT count(*) FROM {table}" for table in NEW_TABLES),
            "SELECT * FROM zapvisor_list_webhooks('alpha', NULL, 10)",
            "SELECT * FROM zapvisor_claim_webhooks('alpha', now(), 10, now())",
            "SELECT * FROM zapvisor_list_alerts(NULL, NULL, 10)",
            "SELECT * FROM zapvisor_list_health(NULL)",
            "SELECT * FROM zapvisor_recent_messages('alpha', 'x@c.us', 10)",
            "SELECT zapvisor_add_message('alpha', 'x@c.us', 'user', 'oi', now(), NULL)",
            "SELECT zapvisor_import('{}')",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(query.encode())
        # Not a sequence, not a function of ours: anon has no right at all.
        granted = conn.execute(
            b"SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            b" WHERE n.nspname = 'public' AND c.relkind = 'S'"
            b" AND CASE WHEN c.relkind = 'S'"
            b" THEN has_sequence_privilege(c.oid, 'SELECT, USAGE, UPDATE') END"
            b" UNION ALL SELECT p.proname FROM pg_proc p"
            b" JOIN pg_namespace n ON n.oid = p.pronamespace"
            b" WHERE n.nspname = 'public' AND p.proname LIKE 'zapvisor%'"
            b" AND has_function_privilege(p.oid, 'EXECUTE')"
        ).fetchall()
        assert granted == []


def test_after_a_careless_grant_row_level_security_still_shows_anon_nothing(
    pg_cluster: PgCluster, pg_dsn: str, seeded: str
) -> None:
    dbname = pg_dsn.rsplit("/", 1)[1]
    pg_cluster.server.execute(
        f"GRANT SELECT ON whatsapp_sessions, {', '.join(NEW_TABLES)} TO anon", dbname
    )
    with psycopg.connect(seeded, autocommit=True) as conn:
        conn.execute("SET ROLE anon")
        for table in ("whatsapp_sessions", *NEW_TABLES):
            assert conn.execute(f"SELECT count(*) FROM {table}".encode()).fetchone() == (0,)
    rls = _scalar(
        pg_dsn,
        "SELECT count(*) FILTER (WHERE relrowsecurity) FROM pg_class WHERE relkind = 'r'"
        " AND relname IN"
        " ('whatsapp_sessions', 'session_events', 'hosts', 'zapvisor_schema_migrations',"
        " 'webhook_outbox', 'session_health', 'alerts', 'conversations', 'messages')",
    )
    assert rls == 9


def test_the_service_role_sees_and_does_everything(seeded: str) -> None:
    with psycopg.connect(seeded, autocommit=True) as conn:
        conn.execute("SET ROLE service_role")
        row = conn.execute("SELECT session_name, api_token_hash FROM whatsapp_sessions")
        assert row.fetchall() == [("alpha", "ab" * 32)]
        for table in NEW_TABLES:
            assert conn.execute(f"SELECT count(*) FROM {table}".encode()).fetchone() == (1,)
        conn.execute("SELECT zapvisor_delete_session('alpha', 'service')")
        assert conn.execute("SELECT count(*) FROM whatsapp_sessions").fetchone() == (0,)


def test_a_change_by_one_instance_wakes_another_within_a_second(pg_dsn: str) -> None:
    writer, watcher = PostgresStore(pg_dsn), PostgresStore(pg_dsn)
    try:
        writer.create_session(
            NewSession(name="alpha"),
            host="h1",
            ports=range(3001, 3011),
            exclude_ports=(),
            max_sessions=10,
            actor="t",
        )
        watcher.poll_interval = 60.0  # so only a NOTIFY can wake it in time
        assert watcher.wait_for_change(0.2) is False
        written: list[float] = []

        def write() -> None:
            writer.update_session("alpha", {"description": "x"}, actor="ana", action="configure")
            written.append(time.monotonic())

        timer = threading.Timer(0.3, write)
        timer.start()
        assert watcher.wait_for_change(10) is True
        woke = time.monotonic()
        timer.join()
        assert woke - written[0] < 1.0
    finally:
        writer.close()
        watcher.close()


def test_unreachable_server_names_the_store_and_hides_the_password() -> None:
    store = PostgresStore(f"postgresql://zv:{PASSWORD}@127.0.0.1:9/zapvisor")
    with pytest.raises(StoreError) as info:
        store.list_sessions()
    message = str(info.value)
    assert message.startswith("the postgres store at 127.0.0.1:9/zapvisor is unreachable: ")
    assert "refused" in message.lower() and PASSWORD not in message
    assert store.describe() == "postgres zv@127.0.0.1:9/zapvisor"


@pytest.mark.e2e
def test_sessions_on_postgres_end_to_end(pg_dsn: str, make_env: Callable[..., Env]) -> None:
    """Runners get the store from runtime.env: a sim session pairs and its runner's
    status lands in PostgreSQL. A create whose supervisord step fails leaves no row."""
    zv = make_env(ZAPVISOR_DATABASE_URL=pg_dsn)
    a = zv.json("create", "cliente-001", "--connector", "sim")
    assert a["port"] == zv.base_port and a["pid"]
    wait_for(lambda: zv.json("show", "cliente-001")["status"] == "waiting_scan", timeout=30)
    zv.cli("sim-scan", "cliente-001")
    wait_for(
        lambda: (
            _scalar(
                pg_dsn,
                "SELECT status FROM whatsapp_sessions WHERE session_name = %s",
                "cliente-001",
            )
            == "connected"
        ),
        timeout=30,
    )
    assert (zv.home / "runtime.env").stat().st_mode & 0o777 == 0o600

    # supervisord's step fails (its config file cannot be replaced): nothing is left
    conf = zv.home / "supervisord.conf"
    conf.unlink()
    conf.mkdir()
    try:
        failed = zv.cli("create", "cliente-002", "--connector", "sim", check=False)
        assert failed.returncode == 69 and "supervisord.conf" in failed.stderr
    finally:
        conf.rmdir()
    count = _scalar(
        pg_dsn, "SELECT count(*) FROM whatsapp_sessions WHERE session_name = 'cliente-002'"
    )
    assert count == 0
    trail = _scalar(
        pg_dsn,
        "SELECT string_agg(action, ',' ORDER BY id) FROM session_events"
        " WHERE session_name = 'cliente-002'",
    )
    assert trail == "create,delete"
    assert not (zv.home / "secrets" / "cliente-002.token").exists()
    zv.cli("apply")
    assert zv.json("create", "cliente-002", "--connector", "sim")["port"] == zv.base_port + 1


def test_supabase_connection_strings_and_redaction() -> None:
    pooler = PostgresStore(
        "postgresql://postgres.abcdref:p%40ss@aws-0-sa-east-1.pooler.supabase.com:6543/"
        "postgres?sslmode=require"
    )
    assert pooler.describe() == (
        "postgres postgres.abcdref@aws-0-sa-east-1.pooler.supabase.com:6543/postgres"
    )
    keywords = PostgresStore("host=db.abcdref.supabase.co port=5432 user=postgres password=x1")
    assert keywords.describe() == "postgres postgres@db.abcdref.supabase.co:5432/postgres"
    with pytest.raises(ConfigError) as info:
        PostgresStore("postgresql://u:s3cr et@host/db")
    assert "s3cr" not in str(info.value) and "ZAPVISOR_DATABASE_URL" in str(info.value)
    assert redact("failed for postgresql://u:pw1@h:5/db here") == (
        "failed for postgresql://u:***@h:5/db here"
    )
    assert redact("host=h password='a b' user=u") == "host=h password=*** user=u"
    assert redact("token abc123 leaked", ["abc123"]) == "token *** leaked"


def test_times_come_back_in_utc_whatever_the_server_zone(pg_dsn: str) -> None:
    store = PostgresStore(pg_dsn + "?options=-c%20TimeZone%3DAmerica/Sao_Paulo")
    try:
        created = store.create_session(
            NewSession(name="alpha"),
            host="h1",
            ports=range(3001, 3011),
            exclude_ports=(),
            max_sessions=10,
            actor="t",
        )
        assert _scalar(pg_dsn + "?options=-c%20TimeZone%3DAmerica/Sao_Paulo", "SHOW TimeZone") == (
            "America/Sao_Paulo"
        )
        for value in (created.created_at, store.list_events("alpha")[0].ts):
            assert (offset := value.utcoffset()) is not None and offset.total_seconds() == 0
    finally:
        store.close()


def test_the_change_marker_moves_for_a_change_committed_after_a_newer_one(pg_dsn: str) -> None:
    """Two writers: the one that began first (an older updated_at) commits last. The
    newest updated_at does not move then; the marker must, or the monitor, which reads
    the rows only when it moved, would never see that change."""
    store = PostgresStore(pg_dsn)
    try:
        for name in ("alpha", "bravo"):
            _create(store, name)
        set_time = "UPDATE whatsapp_sessions SET description = %s, updated_at = %s::timestamptz"
        with psycopg.connect(pg_dsn) as first, psycopg.connect(pg_dsn) as second:
            first.execute(set_time + " WHERE session_name = 'alpha'", ("a", "2030-01-01T00:00:01Z"))
            second.execute(
                set_time + " WHERE session_name = 'bravo'", ("b", "2030-01-01T00:00:02Z")
            )
            second.commit()
            seen = store.change_marker()
            first.commit()
        assert store.change_marker() != seen
        assert store.get_session("alpha").description == "a"
        assert store.change_marker() == store.change_marker(), "no change, no move"
    finally:
        store.close()
