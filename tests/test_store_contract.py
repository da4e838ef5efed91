"""The store contract: every store implementation must pass this same suite.

The ``store_factory`` fixture is parametrised over the implementations; each makes
fresh, empty, migrated stores that share one database (so two instances can race):
sqlite in a temp dir, postgres in a fresh database of a real PostgreSQL server, and
supabase through a PostgREST-shaped HTTP server on loopback in front of such a database
(no PostgREST or hosted Supabase can run here: see tests/postgrest_emulator.py).
"""

from __future__ import annotations

import multiprocessing
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ecosystem.errors import CapacityError, PortsExhausted, SessionExists, SessionNotFound
from ecosystem.models import NewSession
from ecosystem.states import DesiredState, Status
from ecosystem.store import Store
from ecosystem.store.sqlite import SQLiteStore
from tests.conftest import PgCluster

StoreFactory = Callable[[], Store]


def _sqlite_factory(stack: ExitStack, request: pytest.FixtureRequest) -> StoreFactory:
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="zv-store-")))

    def make() -> Store:
        return SQLiteStore(tmp / "zapvisor.db")

    return make


def _postgres_factory(stack: ExitStack, request: pytest.FixtureRequest) -> StoreFactory:
    from ecosystem.store.postgres import PostgresStore

    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    name = cluster.new_database()
    stack.callback(cluster.drop_database, name)
    dsn = cluster.dsn(name)
    return lambda: PostgresStore(dsn)


def _supabase_factory(stack: ExitStack, request: pytest.FixtureRequest) -> StoreFactory:
    from ecosystem.store.supabase import SupabaseStore
    from tests.pgserver import AUTHENTICATOR_PASSWORD
    from tests.postgrest_emulator import SERVICE_KEY, PostgrestEmulator

    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    name = cluster.new_database()
    stack.callback(cluster.drop_database, name)
    api = PostgrestEmulator(
        cluster.dsn(name, user="authenticator", password=AUTHENTICATOR_PASSWORD)
    ).start()
    stack.callback(api.stop)
    return lambda: SupabaseStore(api.url, SERVICE_KEY)


FACTORIES = {
    "sqlite": _sqlite_factory,
    "postgres": _postgres_factory,
    "supabase": _supabase_factory,
}


@pytest.fixture(params=list(FACTORIES))
def store_factory(request: pytest.FixtureRequest) -> Iterator[StoreFactory]:
    made: list[Store] = []
    with ExitStack() as stack:
        base = FACTORIES[request.param](stack, request)

        def make() -> Store:
            store = base()
            store.migrate()
            made.append(store)
            return store

        yield make
        for store in made:
            store.close()


@pytest.fixture
def store(store_factory: StoreFactory) -> Store:
    return store_factory()


PORTS = range(3001, 3011)


def create(
    store: Store,
    name: str,
    host: str = "h1",
    exclude: tuple[int, ...] = (),
    max_sessions: int = 10,
    **fields: Any,
) -> Any:
    return store.create_session(
        NewSession(name=name, **fields),
        host=host,
        ports=PORTS,
        exclude_ports=exclude,
        max_sessions=max_sessions,
        actor="tester",
        api_token_hash="ab" * 32,
    )


def test_create_get_list_delete(store: Store) -> None:
    s = create(store, "alpha", description="Empresa ABC — São Paulo", connector="sim")
    assert s.port == 3001 and s.host == "h1"
    got = store.get_session("alpha")
    assert got.description == "Empresa ABC — São Paulo"
    assert got.status == Status.INITIALIZING and got.desired_state == DesiredState.RUNNING
    assert got.api_token_hash == "ab" * 32
    create(store, "beta")
    assert [x.name for x in store.list_sessions()] == ["alpha", "beta"]
    assert [x.name for x in store.list_sessions("h1")] == ["alpha", "beta"]
    assert store.list_sessions("other") == []
    store.delete_session("alpha", actor="tester")
    with pytest.raises(SessionNotFound, match="alpha"):
        store.get_session("alpha")
    assert [x.name for x in store.list_sessions()] == ["beta"]


def test_names_are_unique_and_a_duplicate_changes_nothing(store: Store) -> None:
    create(store, "alpha", description="first")
    with pytest.raises(SessionExists, match="alpha"):
        create(store, "alpha", description="second", host="h2")
    assert store.get_session("alpha").description == "first"
    assert len(store.list_sessions()) == 1


def test_json_fields_round_trip(store: Store) -> None:
    ai = {
        "model": "gpt",
        "temperature": 0.7,
        "system_prompt": "olá 👋 a'b\"c\nnova linha",
        "max_tokens": None,
    }
    timing = {"quiet_hours": {"start": "22:00", "end": "07:00", "tz": "America/Sao_Paulo"}}
    create(store, "alpha", ai_config=ai, timing_config=timing)
    got = store.get_session("alpha")
    # a null is the field's default: not kept (a fleet file, TOML, could not write it)
    assert got.ai_config == {k: v for k, v in ai.items() if v is not None}
    assert got.timing_config == timing
    store.update_session("alpha", {"ai_config": {"history": 1}}, actor="t", action="configure")
    assert store.get_session("alpha").ai_config == {"history": 1}
    assert store.get_session("alpha").timing_config == timing


def test_port_is_lowest_free_and_comes_back(store: Store) -> None:
    ports = [create(store, f"s{i}").port for i in range(3)]
    assert ports == [3001, 3002, 3003]
    store.delete_session("s1", actor="t")
    assert create(store, "s9").port == 3002
    assert create(store, "s8", exclude=(3004, 3005)).port == 3006


def test_ports_are_per_host(store: Store) -> None:
    assert create(store, "a", host="h1").port == 3001
    assert create(store, "b", host="h2").port == 3001


def test_capacity(store: Store) -> None:
    for i in range(3):
        create(store, f"s{i}", max_sessions=3)
    with pytest.raises(CapacityError, match="MAX_SESSIONS"):
        create(store, "s3", max_sessions=3)
    with pytest.raises(PortsExhausted, match="3001-3010") as info:
        create(store, "s4", exclude=tuple(range(3004, 3011)))
    assert info.value.busy == list(range(3004, 3011))
    assert len(store.list_sessions()) == 3


def test_runtime_updates_record_status_transitions(store: Store) -> None:
    create(store, "alpha")
    store.set_runtime("alpha", {"status": Status.WAITING_SCAN, "qr_payload": "2@x"}, actor="runner")
    store.set_runtime("alpha", {"qr_payload": "2@y"}, actor="runner")
    store.set_runtime("alpha", {"status": Status.CONNECTED, "phone": "5511"}, actor="runner")
    got = store.get_session("alpha")
    assert got.status == Status.CONNECTED and got.phone == "5511" and got.qr_payload == "2@y"
    events = store.list_events("alpha")
    transitions = [(e.from_status, e.to_status) for e in events if e.action == "status"]
    assert transitions == [("waiting_scan", "connected"), ("initializing", "waiting_scan")]
    assert events[-1].action == "create" and events[-1].actor == "tester"
    with pytest.raises(ValueError, match="desired_state"):
        store.set_runtime("alpha", {"desired_state": "stopped"}, actor="runner")


def test_a_repeated_report_leaves_the_row_as_it_was(store: Store) -> None:
    """A runner reports times with microseconds; each store keeps them at its own
    precision (SQLite to the millisecond, PostgreSQL to the microsecond). The same report
    again answers the row as the first left it, and adds no status event."""
    create(store, "alpha")
    now = datetime.now(UTC).replace(microsecond=654321)
    report: dict[str, Any] = {
        "status": Status.CONNECTED,
        "phone": "5511",
        "connected_at": now,
        "last_activity_at": now + timedelta(seconds=1),
        "qr_payload": None,
        "qr_expires_at": None,
        "last_error": None,
    }
    first = store.set_runtime("alpha", report, actor="runner")
    again = store.set_runtime("alpha", report | {"status": "connected"}, actor="runner")
    stored = store.get_session("alpha")
    for row in (first, again):
        assert {f: getattr(row, f) for f in report} == {f: getattr(stored, f) for f in report}
    assert stored.connected_at is not None
    assert timedelta(0) <= now - stored.connected_at < timedelta(milliseconds=1)
    assert [e.to_status for e in store.list_events("alpha") if e.action == "status"] == [
        "connected"
    ]


def test_operator_updates_are_audited(store: Store) -> None:
    create(store, "alpha")
    store.update_session(
        "alpha", {"desired_state": DesiredState.STOPPED}, actor="ana", action="stop"
    )
    assert store.get_session("alpha").desired_state == DesiredState.STOPPED
    store.delete_session("alpha", actor="ana")
    actions = [(e.action, e.actor) for e in store.list_events("alpha")]
    assert actions[:2] == [("delete", "ana"), ("stop", "ana")]
    store.add_event(None, "note", actor="ana", detail={"k": "v"})
    assert store.list_events(limit=1)[0].detail == {"k": "v"}


def test_an_event_keeps_the_time_it_happened(store: Store) -> None:
    """The health monitor writes what it did during a store outage when the store
    answers again, each event at the time it happened."""
    then = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
    store.add_event("alpha", "crash", actor="health", detail={"n": 1}, ts=then)
    store.add_event("alpha", "auto_restart", actor="health")
    restart, crash = store.list_events("alpha", limit=2)
    assert (crash.action, crash.ts, crash.detail) == ("crash", then, {"n": 1})
    assert restart.action == "auto_restart" and restart.ts > then + timedelta(days=30)


def test_unknown_session(store: Store) -> None:
    with pytest.raises(SessionNotFound):
        store.update_session("ghost", {"description": "x"}, actor="t", action="configure")
    with pytest.raises(SessionNotFound):
        store.delete_session("ghost", actor="t")


def test_migrate_is_idempotent(store: Store) -> None:
    version = store.schema_version()
    assert version >= 1
    assert store.migrate() == []
    assert store.schema_version() == version


def _reserve_many(factory: StoreFactory, prefix: str, count: int, out: Any) -> None:
    store = factory()
    ports = []
    for i in range(count):
        s = store.create_session(
            NewSession(name=f"{prefix}{i}"),
            host="h1",
            ports=range(4000, 4100),
            exclude_ports=(),
            max_sessions=100,
            actor=prefix,
        )
        ports.append(s.port)
    out.put(ports)


def test_concurrent_reservation_from_two_processes(store_factory: StoreFactory) -> None:
    store_factory()  # migrated before the race
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_reserve_many, args=(store_factory, p, 25, out)) for p in ("a", "b")
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    ports = results[0] + results[1]
    assert len(ports) == 50 and len(set(ports)) == 50
    assert sorted(ports) == list(range(4000, 4050))


def test_import_rows_keeps_every_field(store: Store, tmp_path: Path) -> None:
    """What `zapvisor db copy` relies on: rows from the SQLite store land unchanged."""
    src = SQLiteStore(tmp_path / "src.db")
    src.migrate()
    create(
        src,
        "alpha",
        description="Loja — São Paulo",
        webhook_url="https://example.com/hook?x=1",
        ai_config={"model": "m", "system_prompt": "olá", "temperature": None},
        timing_config={"reply_delay": [0.5, 2.0]},
    )
    create(src, "beta", host="h2")
    when = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
    src.set_runtime(
        "alpha",
        {
            "status": Status.CONNECTED,
            "phone": "5511999990000",
            "qr_payload": "2@abc",
            "qr_expires_at": when + timedelta(seconds=20),
            "last_error": "was offline",
            "connected_at": when,
            "last_activity_at": when + timedelta(minutes=5),
            "messages_sent": 7,
            "messages_received": 11,
        },
        actor="runner",
    )
    src.update_session("beta", {"desired_state": DesiredState.STOPPED}, actor="ana", action="stop")
    sessions, events = src.list_sessions(), src.list_events(limit=1000)

    assert store.import_rows(sessions, events, actor="copy") == 2
    for orig in sessions:
        got = store.get_session(orig.name)
        assert got.model_dump() == orig.model_dump()
        assert got.api_token_hash == orig.api_token_hash == "ab" * 32
    copied = [
        (e.ts, e.session_name, e.actor, e.action, e.from_status, e.to_status, e.detail)
        for e in store.list_events(limit=1000)
    ]
    assert copied == [
        (e.ts, e.session_name, e.actor, e.action, e.from_status, e.to_status, e.detail)
        for e in events
    ]
    # a second copy changes nothing and names what is already there
    with pytest.raises(SessionExists, match="alpha, beta"):
        store.import_rows(sessions, events, actor="copy")
    assert len(store.list_events(limit=1000)) == len(events)
    src.close()


def test_wait_for_change_sees_another_instance(store_factory: StoreFactory) -> None:
    writer, watcher = store_factory(), store_factory()
    create(writer, "alpha")
    watcher.poll_interval = min(watcher.poll_interval, 0.2)
    assert watcher.wait_for_change(0.3) is False  # baseline; nothing happens
    timer = threading.Timer(
        0.2, lambda: writer.set_runtime("alpha", {"phone": "5511"}, actor="runner")
    )
    timer.start()
    try:
        assert watcher.wait_for_change(15) is True
    finally:
        timer.join()
    # quiet again: at most the tail of that one change wakes it once more (on PostgreSQL,
    # seen only on a loaded machine), never a wake-up without a change
    settled = not watcher.wait_for_change(0.3) or not watcher.wait_for_change(0.3)
    assert settled, "woken twice with nothing changed"
    writer.delete_session("alpha", actor="t")
    assert watcher.wait_for_change(15) is True
