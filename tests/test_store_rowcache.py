"""Reading every session row again (a live view each second, the health monitor at each
check) makes a record only for the rows that changed since the previous read
(store/rowcache.py); every change is still seen, whoever wrote it. Real SQLite files;
the contract part runs on every store (test_store_contract's factories)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ecosystem.health.model import SessionHealth
from ecosystem.states import DesiredState, Status
from ecosystem.store.rowcache import RowCache
from ecosystem.store.sqlite import SQLiteStore
from tests.test_store_contract import StoreFactory, create, store_factory  # noqa: F401


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[SQLiteStore, SQLiteStore]]:
    """A reader and a writer on one file: two connections, as two processes have."""
    reader, writer = SQLiteStore(tmp_path / "z.db"), SQLiteStore(tmp_path / "z.db")
    reader.migrate()
    yield reader, writer
    reader.close()
    writer.close()


def test_an_unchanged_row_is_not_made_again(two: tuple[SQLiteStore, SQLiteStore]) -> None:
    reader, writer = two
    for name in ("alpha", "beta", "gamma"):
        create(writer, name)
    first = {s.name: s for s in reader.list_sessions("h1")}
    assert reader._sessions_made.made == 3
    again = {s.name: s for s in reader.list_sessions("h1")}
    assert reader._sessions_made.made == 3  # nothing changed: no record made
    assert all(again[n] is first[n] for n in first)

    writer.set_runtime("beta", {"status": Status.WAITING_SCAN, "qr_payload": "q1"}, actor="r")
    after = {s.name: s for s in reader.list_sessions("h1")}
    assert reader._sessions_made.made == 4  # beta alone
    assert after["beta"].status == Status.WAITING_SCAN
    assert after["beta"].qr_payload == "q1"
    assert after["alpha"] is first["alpha"]
    assert after["gamma"] is first["gamma"]


def test_every_kind_of_change_is_seen(two: tuple[SQLiteStore, SQLiteStore]) -> None:
    reader, writer = two
    create(writer, "alpha")
    create(writer, "beta")
    assert [s.name for s in reader.list_sessions("h1")] == ["alpha", "beta"]
    writer.update_session(
        "alpha", {"desired_state": DesiredState.STOPPED}, actor="op", action="stop"
    )
    writer.delete_session("beta", actor="op")
    create(writer, "delta")
    rows = {s.name: s for s in reader.list_sessions("h1")}
    assert sorted(rows) == ["alpha", "delta"]
    assert rows["alpha"].desired_state == DesiredState.STOPPED
    # the same QR twice in a row changes its expiry and time: a new record all the same
    writer.set_runtime("delta", {"qr_payload": "same"}, actor="r")
    seen = reader.list_sessions("h1")[1]
    writer.set_runtime("delta", {"qr_payload": "same", "phone": "5511"}, actor="r")
    assert reader.list_sessions("h1")[1].phone == "5511"
    assert seen.phone is None  # a record handed out before is never changed in place


def test_each_read_shape_keeps_its_own_rows(two: tuple[SQLiteStore, SQLiteStore]) -> None:
    reader, writer = two
    create(writer, "alpha", host="h1")
    create(writer, "beta", host="h2")
    assert [s.name for s in reader.list_sessions("h1")] == ["alpha"]
    assert [s.name for s in reader.list_sessions()] == ["alpha", "beta"]
    made = reader._sessions_made.made
    reader.list_sessions("h1")
    reader.list_sessions()
    assert reader._sessions_made.made == made  # one host's read does not evict all's


def test_health_records_are_made_only_when_changed(
    two: tuple[SQLiteStore, SQLiteStore],
) -> None:
    reader, writer = two
    create(writer, "alpha")
    create(writer, "beta")
    writer.save_health(SessionHealth(name="alpha", restarts=1))
    writer.save_health(SessionHealth(name="beta", restarts=2))
    first = reader.list_health("h1")
    assert reader._health_made.made == 2
    assert reader.list_health("h1")["alpha"] is first["alpha"]
    assert reader._health_made.made == 2
    writer.save_health(SessionHealth(name="alpha", restarts=5))
    after = reader.list_health("h1")
    assert after["alpha"].restarts == 5
    assert after["beta"] is first["beta"]
    assert reader._health_made.made == 3


def test_the_cache_holds_only_the_rows_of_the_last_read() -> None:
    cache: RowCache[tuple[str, int], str] = RowCache(lambda r: f"{r[0]}={r[1]}", lambda r: r)
    assert cache.records("all", [("a", 1), ("b", 1)]) == ["a=1", "b=1"]
    assert cache.records("all", [("a", 2), ("b", 1)]) == ["a=2", "b=1"]
    assert cache.made == 3
    assert cache.records("all", [("a", 1)]) == ["a=1"]  # a=1 was dropped: made again
    assert cache.made == 4


def test_a_reader_sees_another_instances_changes(store_factory: StoreFactory) -> None:  # noqa: F811
    """Every store: rows read again after a change by someone else are the new rows,
    the unchanged ones equal to what was read before."""
    writer, reader = store_factory(), store_factory()
    create(writer, "alpha")
    create(writer, "beta")
    before = {s.name: s for s in reader.list_sessions("h1")}
    assert {s.name: s for s in reader.list_sessions("h1")} == before
    writer.set_runtime("alpha", {"status": Status.CONNECTED, "phone": "5511"}, actor="r")
    writer.delete_session("beta", actor="op")
    after = {s.name: s for s in reader.list_sessions("h1")}
    assert sorted(after) == ["alpha"]
    assert after["alpha"].status == Status.CONNECTED
    assert after["alpha"].phone == "5511"
