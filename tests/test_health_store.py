"""The store contract for the health monitor's data (migration 0003): every store
implementation runs these through the contract suite's ``store_factory`` fixture."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ecosystem.errors import SessionNotFound
from ecosystem.health.model import AlertKind, NewAlert, SessionHealth, Severity
from ecosystem.health.volatile import volatile
from ecosystem.store import Store
from ecosystem.store.sqlite import SQLiteStore
from tests.test_store_contract import create
from tests.test_store_contract import store as store
from tests.test_store_contract import store_factory as store_factory

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def hstore(store: Store) -> Store:
    return store


def ram(host: str = "h1", message: str = "RAM 91% > 85%") -> NewAlert:
    return NewAlert(host=host, key="ram", kind=AlertKind.RAM, message=message, value=91.0)


def test_health_defaults_roundtrip_and_cascade(hstore: Store) -> None:
    store = hstore
    create(store, "alpha")
    create(store, "beta", host="h2")
    empty = store.get_health("alpha")
    assert empty.name == "alpha" and empty.restarts == 0 and empty.recent_exits == []
    assert store.list_health() == {}
    with pytest.raises(SessionNotFound):
        store.get_health("nobody")

    saved = SessionHealth(
        name="alpha",
        restarts=3,
        exits=4,
        recent_exits=[T0, T0 + timedelta(seconds=5)],
        last_exit_status=-1,
        last_exit_at=T0 + timedelta(seconds=5),
        last_restart_reason="exited with status 1",
        next_restart_at=T0 + timedelta(seconds=9),
        parked_at=None,
        why_down="exit status 1; stderr: boom",
        stderr_tail="Traceback…\nboom",
    )
    store.save_health(saved)
    store.save_health(SessionHealth(name="beta", restarts=1))
    got = store.get_health("alpha")
    assert got.same_as(saved)
    assert got.recent_exits == [T0, T0 + timedelta(seconds=5)]
    assert set(store.list_health("h1")) == {"alpha"}
    assert set(store.list_health()) == {"alpha", "beta"}

    # saving again replaces the record (upsert)
    store.save_health(saved.model_copy(update={"restarts": 4, "parked_at": T0}))
    again = store.get_health("alpha")
    assert again.restarts == 4 and again.parked_at == T0

    # deleting the session deletes its record; saving for a gone session is refused
    store.delete_session("alpha", actor="tester")
    assert "alpha" not in store.list_health()
    with pytest.raises(SessionNotFound):
        store.save_health(saved)
    create(store, "alpha")
    assert store.get_health("alpha").restarts == 0, "a new session with an old name starts clean"


def test_alert_raised_once_then_cleared_once(hstore: Store) -> None:
    store = hstore
    first = store.raise_alert(ram())
    assert first is not None and first.active and first.kind == AlertKind.RAM
    assert first.severity == Severity.WARNING and first.value == 91.0
    assert store.raise_alert(ram(message="RAM 95% > 85%")) is None, "deduplicated"
    assert store.raise_alert(ram(host="h2")) is not None, "another host has its own"
    assert [a.id for a in store.list_alerts("h1", active=True)] == [first.id]

    cleared = store.clear_alert("h1", "ram")
    assert cleared is not None and cleared.id == first.id and cleared.cleared_at is not None
    assert store.clear_alert("h1", "ram") is None, "nothing active to clear"
    assert store.list_alerts("h1", active=True) == []
    assert [a.id for a in store.list_alerts("h1", active=False)] == [first.id]

    # the condition comes back: a new alert, history keeps both (newest first)
    second = store.raise_alert(ram())
    assert second is not None and second.id != first.id
    assert [a.id for a in store.list_alerts("h1")] == [second.id, first.id]


def test_an_active_alert_keeps_its_figure_current(hstore: Store) -> None:
    """A dead-letter count that grows, a CPU figure: the active alert's message and
    value change in place (no new alert, no new notice); a cleared one stays as it was."""
    store = hstore
    since = datetime.now(UTC) - timedelta(minutes=1)
    first = store.raise_alert(ram())
    assert first is not None
    store.mark_alert_sent(first.id, "raised", datetime.now(UTC))
    assert store.refresh_alert("h1", "ram", "RAM 97% > 85%", 97.0) is True
    assert store.refresh_alert("h1", "ram", "RAM 97% > 85%", 97.0) is False, "no change"
    [now] = store.list_alerts("h1", active=True)
    assert (now.id, now.message, now.value) == (first.id, "RAM 97% > 85%", 97.0)
    assert now.raised_at == first.raised_at
    assert store.pending_alert_notices("h1", since) == [], "no new notice"
    store.clear_alert("h1", "ram")
    assert store.refresh_alert("h1", "ram", "RAM 99%", 99.0) is False
    assert store.list_alerts("h1")[0].message == "RAM 97% > 85%"


def test_alert_notices_pending_until_marked(hstore: Store) -> None:
    store = hstore
    since = datetime.now(UTC) - timedelta(minutes=1)
    alert = store.raise_alert(ram())
    assert alert is not None
    assert [a.id for a in store.pending_alert_notices("h1", since)] == [alert.id]
    store.mark_alert_sent(alert.id, "raised", datetime.now(UTC))
    assert store.pending_alert_notices("h1", since) == []
    store.clear_alert("h1", "ram")
    pending = store.pending_alert_notices("h1", since)
    assert [a.id for a in pending] == [alert.id] and pending[0].raise_sent_at is not None
    store.mark_alert_sent(alert.id, "cleared", datetime.now(UTC))
    assert store.pending_alert_notices("h1", since) == []
    # notices older than `since` are not resent (a URL configured later sends no history)
    old = store.raise_alert(ram(host="h3"))
    assert old is not None
    assert store.pending_alert_notices("h3", datetime.now(UTC) + timedelta(seconds=1)) == []
    with pytest.raises(ValueError, match="phase"):
        store.mark_alert_sent(alert.id, "bogus", datetime.now(UTC))


def test_concurrent_raises_store_one_alert(store_factory) -> None:  # type: ignore[no-untyped-def]
    stores = [store_factory() for _ in range(4)]
    results: list[object] = []

    def worker(s: Store) -> None:
        for _ in range(10):
            results.append(s.raise_alert(ram()))

    threads = [threading.Thread(target=worker, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1
    assert len(stores[0].list_alerts("h1", active=True)) == 1


def test_in_memory_fallback_keeps_the_same_contract(tmp_path: Path) -> None:
    """What the monitor uses while a store has no health tables (health/volatile.py)."""
    tests = (
        test_health_defaults_roundtrip_and_cascade,
        test_alert_raised_once_then_cleared_once,
        test_an_active_alert_keeps_its_figure_current,
        test_alert_notices_pending_until_marked,
    )
    for test in tests:
        base = SQLiteStore(tmp_path / f"{test.__name__}.db")
        base.migrate()
        test(volatile(base))
        assert base.list_alerts() == [] and base.list_health() == {}, "nothing reached the db"
        base.close()
