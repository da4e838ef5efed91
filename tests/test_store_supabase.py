"""The supabase store at its HTTP boundary.

No hosted Supabase project (nor a PostgREST server) can be reached from these machines,
so these tests run the store against tests/postgrest_emulator.py: a real HTTP server on
loopback that answers the REST requests the store makes the way PostgREST does, in
front of a real PostgreSQL holding the migrated schema and Supabase's API roles. The
opt-in test at the end runs against a real project when ZAPVISOR_TEST_SUPABASE_URL and
ZAPVISOR_TEST_SUPABASE_KEY (its service role key) are set.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ecosystem.errors import StoreError
from ecosystem.models import NewSession
from ecosystem.states import Status
from ecosystem.store.pgcommon import latest_version
from ecosystem.store.sqlite import SQLiteStore
from ecosystem.store.supabase import SupabaseStore
from ecosystem.webhook_events import new_event
from tests.conftest import Env, PgCluster, wait_for
from tests.pgserver import AUTHENTICATOR_PASSWORD
from tests.postgrest_emulator import ANON_KEY, SERVICE_KEY, PostgrestEmulator


def _emulator(cluster: PgCluster, dbname: str) -> PostgrestEmulator:
    dsn = cluster.dsn(dbname, user="authenticator", password=AUTHENTICATOR_PASSWORD)
    return PostgrestEmulator(dsn).start()


@pytest.fixture
def api(pg_cluster: PgCluster) -> Iterator[PostgrestEmulator]:
    """The REST API of a fresh migrated database."""
    name = pg_cluster.new_database()
    emulator = _emulator(pg_cluster, name)
    yield emulator
    emulator.stop()
    pg_cluster.drop_database(name)


def _create(store: SupabaseStore, name: str) -> None:
    store.create_session(
        NewSession(name=name),
        host="h1",
        ports=range(3001, 3011),
        exclude_ports=(),
        max_sessions=10,
        actor="t",
        api_token_hash="cd" * 32,
    )


def test_the_store_speaks_postgrest(api: PostgrestEmulator) -> None:
    store = SupabaseStore(api.url, SERVICE_KEY)
    _create(store, "alpha")
    store.get_session("alpha")
    store.set_runtime("alpha", {"status": Status.WAITING_SCAN}, actor="runner")
    store.list_events("alpha", limit=5)
    store.delete_session("alpha", actor="t")
    assert api.requests == [
        ("POST", "/rest/v1/rpc/zapvisor_create_session"),
        ("GET", "/rest/v1/whatsapp_sessions?select=%2A&session_name=eq.alpha"),
        ("POST", "/rest/v1/rpc/zapvisor_update_session"),
        ("GET", "/rest/v1/session_events?select=%2A&session_name=eq.alpha&order=id.desc&limit=5"),
        ("POST", "/rest/v1/rpc/zapvisor_delete_session"),
    ]
    store.close()


def test_the_anon_key_is_refused_and_never_shown(api: PostgrestEmulator) -> None:
    owner = SupabaseStore(api.url, SERVICE_KEY)
    _create(owner, "alpha")
    anon = SupabaseStore(api.url, ANON_KEY)
    for call in (anon.list_sessions, lambda: _create(anon, "beta")):
        with pytest.raises(StoreError) as info:
            call()
        message = str(info.value)
        assert message.startswith(f"the supabase store at {api.url} refused the key")
        assert "service_role" in message and ANON_KEY not in message
    assert [s.name for s in owner.list_sessions()] == ["alpha"]


def test_unreachable_api_names_the_store() -> None:
    store = SupabaseStore("http://127.0.0.1:9", SERVICE_KEY)
    with pytest.raises(StoreError) as info:
        store.get_session("alpha")
    assert str(info.value).startswith("the supabase store at http://127.0.0.1:9 is unreachable")
    assert SERVICE_KEY not in str(info.value)


@pytest.mark.e2e
def test_sessions_on_supabase_from_the_cli(
    api: PostgrestEmulator, make_env: Callable[..., Env]
) -> None:
    zv = make_env(SUPABASE_URL=api.url, SUPABASE_SERVICE_ROLE_KEY=SERVICE_KEY)
    assert zv.json("db", "status")["store"] == "supabase"
    assert zv.json("db", "migrate")["applied"] == []
    # a session this machine kept in SQLite moves over with `db copy`
    old = SQLiteStore(zv.home / "zapvisor.db")
    old.migrate()
    old.create_session(
        NewSession(name="old-001", description="antiga", ai_config={"history": 1}),
        host=socket.gethostname(),
        ports=range(zv.base_port + 5, zv.base_port + 6),
        exclude_ports=(),
        max_sessions=10,
        actor="t",
    )
    old.close()
    assert zv.json("db", "copy", "--to", "supabase")["sessions"] == ["old-001"]
    moved = zv.json("show", "old-001")
    assert moved["description"] == "antiga" and moved["ai_config"] == {"history": 1}
    assert moved["port"] == zv.base_port + 5
    created = zv.json("create", "alpha", "--connector", "sim", "--stopped")
    assert created["port"] == zv.base_port and created["process_state"] == "STOPPED"
    # the runner reads SUPABASE_* from runtime.env and reports over the REST API
    zv.json("start", "alpha")
    wait_for(lambda: zv.json("show", "alpha")["status"] == "waiting_scan", timeout=30)
    store_check = next(c for c in zv.json("doctor")["checks"] if c["name"] == "store")
    assert store_check["level"] == "ok" and store_check["detail"].startswith(
        f"supabase {api.url} answers"
    )


@pytest.mark.e2e
def test_a_new_project_gets_its_schema_from_db_sql(
    pg_cluster: PgCluster, make_env: Callable[..., Env]
) -> None:
    """Without a connection string the REST API cannot create tables: `db migrate` says
    what to do, and `db sql` is what the operator pastes into the SQL editor."""
    name = f"zv_new_{secrets.token_hex(3)}"
    pg_cluster.server.supabase_like_database(name)
    emulator = _emulator(pg_cluster, name)
    try:
        zv = make_env(SUPABASE_URL=emulator.url, SUPABASE_SERVICE_ROLE_KEY=SERVICE_KEY)
        refused = zv.cli("db", "migrate", check=False)
        assert refused.returncode == 69 and "zapvisor db sql" in refused.stderr
        assert "schema v0" in refused.stderr
        script = zv.cli("db", "sql").stdout
        with psycopg.connect(pg_cluster.dsn(name), autocommit=True) as conn:
            conn.execute(script.encode())  # the SQL editor
        status = zv.json("db", "status")
        assert status["version"] == latest_version() and status["pending"] == []
        assert zv.json("create", "alpha", "--connector", "sim", "--stopped")["port"] == zv.base_port
    finally:
        emulator.stop()
        pg_cluster.drop_database(name)


def test_live_supabase_project() -> None:
    """Opt-in: the store against a real Supabase project whose schema was migrated."""
    url = os.environ.get("ZAPVISOR_TEST_SUPABASE_URL")
    key = os.environ.get("ZAPVISOR_TEST_SUPABASE_KEY")
    if not url or not key:
        pytest.skip(
            "set ZAPVISOR_TEST_SUPABASE_URL and ZAPVISOR_TEST_SUPABASE_KEY (service role key "
            "of a migrated project) to run against a real Supabase project"
        )
    store = SupabaseStore(url, key)
    name = f"zvtest-{secrets.token_hex(4)}"
    host = f"zvtest-{secrets.token_hex(4)}"
    try:
        assert store.schema_version() >= 3
        created = store.create_session(
            NewSession(name=name, ai_config={"model": "v", "history": 1}),
            host=host,
            ports=range(45001, 45011),
            exclude_ports=(45001,),
            max_sessions=10,
            actor="zapvisor-test",
            api_token_hash="ef" * 32,
        )
        assert created.port == 45002
        store.set_runtime(name, {"status": Status.CONNECTED, "phone": "5511"}, actor="runner")
        got = store.get_session(name)
        assert got.status == Status.CONNECTED and got.ai_config == {"model": "v", "history": 1}
        assert got.api_token_hash == "ef" * 32
        assert [s.name for s in store.list_sessions(host)] == [name]
        actions = [e.action for e in store.list_events(name)]
        assert actions[:2] == ["status", "create"]
        # the webhook outbox (0002; its rows go with the session); health (0003)
        event = new_event(name, "qr_code", {"qrCode": "data:"})
        store.enqueue_webhook(event)
        due = store.due_webhooks(name, datetime.now(UTC) + timedelta(seconds=1))
        assert [r.event_id for r in due] == [event.event_id]
        assert store.webhook_counts(name)["pending"] == 1
        assert store.get_health(name).restarts == 0 and store.list_health(host) == {}
    finally:
        with contextlib.suppress(StoreError):
            store.delete_session(name, actor="zapvisor-test")
        store.close()
