"""What one runner report costs the SQLite store, statement by statement, so a report
that grows a statement (a second read under the lock, a second UPDATE) fails here.

Counted with ``sqlite3.Connection.set_trace_callback`` on a real store file, as a
runner writes: its own connection, under its lease's fence. SQLite reports each trigger
program it runs (the fence's, a BEFORE UPDATE trigger) as one more statement, and
Python's callback gives it the text of the statement that fired it: a fenced UPDATE
shows twice in the trace while the row is written once (``total_changes`` says so), so
consecutive repeats are counted as the trigger they are."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from ecosystem.errors import LeaseLost
from ecosystem.lease import Fence
from ecosystem.models import NewSession, utcnow
from ecosystem.session import Session
from ecosystem.states import Status
from ecosystem.store import Store
from ecosystem.store.sqlite import SQLiteStore

NAME = "alpha"
HOST = "h1"


def _create(store: Store) -> None:
    store.create_session(
        NewSession(name=NAME),
        host=HOST,
        ports=range(20000, 20010),
        exclude_ports=(),
        max_sessions=10,
        actor="tester",
    )


def _runner(path: Path) -> tuple[SQLiteStore, SQLiteStore, Fence]:
    """The operator's connection and a runner's, fenced by the lease it took."""
    admin = SQLiteStore(path)
    admin.migrate()
    _create(admin)
    runner = SQLiteStore(path)
    fence = runner.acquire_lease(NAME, HOST, 30.0).fence
    runner.set_fence(fence)
    return admin, runner, fence


def _tracer(db: sqlite3.Connection) -> Callable[[], tuple[list[str], int]]:
    """Each call: the statements run since the last (verb and table; a trigger program
    as "trigger") and the rows they wrote."""
    traced: list[str] = []
    db.set_trace_callback(traced.append)
    written = [db.total_changes]

    def take() -> tuple[list[str], int]:
        out: list[str] = []
        previous = None
        for sql in traced:
            words = sql.split()
            if sql == previous or sql.startswith("--"):
                out.append("trigger")
            else:  # "UPDATE whatsapp_sessions", "SELECT * FROM", "BEGIN IMMEDIATE", ...
                out.append(" ".join(words[:2] if words[0] == "UPDATE" else words[:3]))
            previous = sql
        traced.clear()
        rows, written[0] = db.total_changes - written[0], db.total_changes
        return out, rows

    return take


@pytest.fixture
def fenced(tmp_path: Path) -> Iterator[tuple[SQLiteStore, SQLiteStore, Fence]]:
    admin, runner, fence = _runner(tmp_path / "zapvisor.db")
    yield admin, runner, fence
    runner.close()
    admin.close()


def test_a_report_is_one_read_and_one_update(
    fenced: tuple[SQLiteStore, SQLiteStore, Fence],
) -> None:
    admin, runner, _ = fenced
    take = _tracer(runner._db)

    # a status change: the read outside the lock, then the UPDATE and its event in one
    # transaction; no second read of the row under the lock
    row = runner.set_runtime(NAME, {"status": Status.WAITING_SCAN}, actor="runner")
    assert row.status == Status.WAITING_SCAN
    statements, rows = take()
    assert statements == [
        "SELECT * FROM",
        "BEGIN IMMEDIATE",
        "UPDATE whatsapp_sessions",
        "trigger",
        "INSERT INTO session_events",
        "COMMIT",
    ]
    assert rows == 2  # the row and its status event, each once
    event = admin.list_events(NAME, limit=1)[0]
    assert (event.action, event.from_status, event.to_status) == (
        "status",
        Status.INITIALIZING,
        Status.WAITING_SCAN,
    )

    # a report that keeps the status (a QR rotation): the read and one UPDATE, no
    # transaction around it (one statement is atomic by itself)
    expires = utcnow().replace(microsecond=0) + timedelta(seconds=20)
    qr = {"status": Status.WAITING_SCAN, "qr_payload": "qr-2", "qr_expires_at": expires}
    row = runner.set_runtime(NAME, qr, actor="runner")
    assert (row.qr_payload, row.qr_expires_at) == ("qr-2", expires)
    assert take() == (["SELECT * FROM", "UPDATE whatsapp_sessions", "trigger"], 1)
    assert admin.get_session(NAME).qr_payload == "qr-2"
    assert admin.list_events(NAME, limit=1)[0].to_status == Status.WAITING_SCAN  # no new one

    # a report that changes nothing: the read alone, no write lock taken
    assert runner.set_runtime(NAME, qr, actor="runner").qr_payload == "qr-2"
    assert take() == (["SELECT * FROM"], 0)


def test_a_report_after_another_writer_moved_the_status_reads_again(
    fenced: tuple[SQLiteStore, SQLiteStore, Fence],
) -> None:
    """The UPDATE is conditioned on the status read outside the lock: when another
    writer changed it in between, the report reads the row again under the lock, so its
    status event names the status it really replaced."""
    admin, runner, _ = fenced
    read = runner._fetch

    def read_then_someone_writes(db: sqlite3.Connection, name: str) -> Session:
        found = read(db, name)
        if not db.in_transaction:  # the read outside the lock: another writer steps in
            admin.set_runtime(NAME, {"status": Status.ERROR}, actor="other")
        return found

    runner._fetch = read_then_someone_writes  # type: ignore[method-assign]
    take = _tracer(runner._db)
    row = runner.set_runtime(NAME, {"status": Status.CONNECTED}, actor="runner")
    statements, rows = take()
    assert row.status == Status.CONNECTED
    assert statements.count("UPDATE whatsapp_sessions") == 2  # the missed one, then the real
    assert rows == 2
    event = admin.list_events(NAME, limit=1)[0]
    assert (event.actor, event.from_status, event.to_status) == (
        "runner",
        Status.ERROR,
        Status.CONNECTED,
    )


def test_a_runner_that_lost_its_lease_writes_nothing(
    fenced: tuple[SQLiteStore, SQLiteStore, Fence],
) -> None:
    admin, runner, _ = fenced
    assert admin.acquire_lease(NAME, HOST, 30.0).epoch == 2  # a new runner: the old is fenced
    with pytest.raises(LeaseLost, match=NAME):
        runner.set_runtime(NAME, {"qr_payload": "stale"}, actor="runner")
    with pytest.raises(LeaseLost, match=NAME):
        runner.set_runtime(NAME, {"status": Status.CONNECTED}, actor="runner")
    after = admin.get_session(NAME)
    assert (after.qr_payload, after.status) == (None, Status.INITIALIZING)
    assert [e.action for e in admin.list_events(NAME)].count("status") == 0


def test_a_report_on_postgres_is_one_statement(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a fenced report is one statement, its own transaction: the fence
    rides an argument of the call (no BEGIN, set_config and COMMIT around it), and still
    refuses a runner whose lease moved on. A real server (tests/pgserver.py)."""
    import psycopg

    from ecosystem.store.postgres import PostgresStore

    cluster = request.getfixturevalue("pg_cluster")
    database = cluster.new_database()
    request.addfinalizer(lambda: cluster.drop_database(database))
    admin, runner = PostgresStore(cluster.dsn(database)), PostgresStore(cluster.dsn(database))
    request.addfinalizer(runner.close)
    request.addfinalizer(admin.close)
    admin.migrate()
    _create(admin)
    runner.set_fence(runner.acquire_lease(NAME, HOST, 30.0).fence)
    sent: list[str] = []
    transactions: list[object] = []
    execute, transaction = psycopg.Cursor.execute, psycopg.Connection.transaction

    def counted(self: Any, query: Any, *args: Any, **kw: Any) -> Any:
        sent.append(query if isinstance(query, str) else query.as_string(self.connection))
        return execute(self, query, *args, **kw)

    def opened(self: Any, *args: Any, **kw: Any) -> Any:
        transactions.append(self)
        return transaction(self, *args, **kw)

    monkeypatch.setattr(psycopg.Cursor, "execute", counted)
    monkeypatch.setattr(psycopg.Connection, "transaction", opened)
    row = runner.set_runtime(NAME, {"status": Status.WAITING_SCAN}, actor="runner")
    assert row.status == Status.WAITING_SCAN
    assert len(sent) == 1 and "zapvisor_update_session" in sent[0] and not transactions
    monkeypatch.undo()
    event = admin.list_events(NAME, limit=1)[0]
    assert (event.actor, event.from_status, event.to_status) == (
        "runner",
        Status.INITIALIZING,
        Status.WAITING_SCAN,
    )
    assert admin.acquire_lease(NAME, HOST, 30.0).epoch == 2  # a new runner: the old is fenced
    with pytest.raises(LeaseLost, match=NAME):
        runner.set_runtime(NAME, {"status": Status.CONNECTED}, actor="runner")
    assert admin.get_session(NAME).status == Status.WAITING_SCAN


def test_a_repeated_report_with_microseconds_takes_no_write_lock(
    fenced: tuple[SQLiteStore, SQLiteStore, Fence],
) -> None:
    """The runner's times carry microseconds and SQLite keeps milliseconds: the same
    report again is still a no-op (the read alone), as is one that says the same thing
    in other words (a status as its string, a time in another zone)."""
    admin, runner, _ = fenced
    now = utcnow().replace(microsecond=123456)
    active = now + timedelta(seconds=1)
    report: dict[str, Any] = {
        "status": Status.CONNECTED,
        "phone": "+5511999990000",
        "connected_at": now,
        "last_activity_at": active,
        "qr_expires_at": now + timedelta(seconds=20),
        "qr_payload": None,
        "last_error": None,
        "messages_sent": 3,
        "messages_received": 4,
    }
    runner.set_runtime(NAME, report, actor="runner")
    stored = admin.get_session(NAME)
    assert stored.qr_expires_at == (now + timedelta(seconds=20)).replace(microsecond=123000)
    take = _tracer(runner._db)
    marker = admin.change_marker()

    row = runner.set_runtime(NAME, report, actor="runner")
    assert take() == (["SELECT * FROM"], 0)
    assert row.connected_at == now.replace(microsecond=123000)  # the row as it is stored

    elsewhere = active.astimezone(timezone(timedelta(hours=-3)))
    same = report | {"status": "connected", "last_activity_at": elsewhere}
    runner.set_runtime(NAME, same, actor="runner")
    assert take() == (["SELECT * FROM"], 0)
    assert admin.change_marker() == marker  # nothing committed: no live view re-reads

    # a change below the store's precision is none; one at it is written
    runner.set_runtime(NAME, {"last_activity_at": active + timedelta(microseconds=1)}, actor="r")
    assert take() == (["SELECT * FROM"], 0)
    later = active + timedelta(milliseconds=1)
    runner.set_runtime(NAME, {"last_activity_at": later}, actor="runner")
    assert take() == (["SELECT * FROM", "UPDATE whatsapp_sessions", "trigger"], 1)
    assert admin.get_session(NAME).last_activity_at == later.replace(microsecond=124000)
