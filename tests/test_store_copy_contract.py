"""The store contract for `zapvisor db copy`'s other rows: a session's webhook outbox,
its health record and the alerts land in every store (sqlite, postgres, supabase)
exactly as the SQLite store kept them, and the session row keeps every column (where
its auth lives, its failover switch)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ecosystem.errors import SessionExists
from ecosystem.health.model import Alert, AlertKind, NewAlert, SessionHealth, Severity
from ecosystem.lease import AuthKind
from ecosystem.models import Event, Session
from ecosystem.store import Store
from ecosystem.store.sqlite import SQLiteStore
from ecosystem.webhook_events import DeliveryState, WebhookEvent, new_event
from tests.test_store_contract import create
from tests.test_store_contract import store as store
from tests.test_store_contract import store_factory as store_factory

T0 = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)


@dataclass
class Source:
    """What `db copy` reads from the SQLite store, and the store it went into."""

    src: SQLiteStore
    sessions: list[Session]
    events: list[Event]
    outbox: list[WebhookEvent]
    health: list[SessionHealth]
    alerts: list[Alert]
    pending: WebhookEvent


@pytest.fixture
def copied(store: Store, tmp_path: Path) -> Iterator[Source]:
    """A SQLite store with a session, its outbox (pending, delivered, dead), a health
    record and alerts (one cleared), imported into ``store``."""
    src = SQLiteStore(tmp_path / "src.db")
    src.migrate()
    create(src, "alpha", webhook_url="https://example.com/hook")
    create(src, "beta", connector="sim")
    src.set_failover("beta", auth=AuthKind.STORE, failover=False, actor="t")
    src.update_session(
        "alpha", {"webhook_events": ["message_ack", "error"]}, actor="t", action="webhook"
    )
    pending = new_event("alpha", "message_ack", {"messageId": "M1", "status": "read"})
    dead = new_event("alpha", "error", {"error": "boom", "code": "X", "recoverable": False})
    done = new_event("alpha", "message_ack", {"messageId": "M0", "status": "sent"})
    for row in (done, pending, dead):
        src.enqueue_webhook(row)
    src.record_webhook_attempt(
        dead.event_id, state=DeliveryState.DEAD, attempts=4, at=T0, status=503, error="HTTP 503"
    )
    src.record_webhook_attempt(
        done.event_id, state=DeliveryState.DELIVERED, attempts=1, at=T0, status=200
    )
    src.save_health(
        SessionHealth(
            name="alpha",
            restarts=2,
            exits=3,
            recent_exits=[T0, T0 + timedelta(seconds=4)],
            last_exit_status=1,
            last_exit_at=T0 + timedelta(seconds=4),
            parked_at=T0 + timedelta(seconds=5),
            why_down="crash loop: 3 exits in 5 minutes",
            stderr_tail="Traceback…",
        )
    )
    cleared = src.raise_alert(
        NewAlert(host="h1", key="ram", kind=AlertKind.RAM, message="RAM 91%", value=91.0)
    )
    assert cleared is not None and src.clear_alert("h1", "ram") is not None
    src.mark_alert_sent(cleared.id, "raised", T0)
    src.raise_alert(
        NewAlert(
            host="h1",
            key="session_error:alpha",
            kind=AlertKind.SESSION_ERROR,
            severity=Severity.CRITICAL,
            message="alpha is in error",
            session_name="alpha",
        )
    )
    sessions, events = src.list_sessions(), src.list_events(limit=1000)
    outbox = list(reversed(src.list_webhooks("alpha", limit=1000)))
    health = list(src.list_health().values())
    alerts = src.list_alerts(limit=1000)

    assert (
        store.import_rows(
            sessions, events, actor="copy", outbox=outbox, health=health, alerts=alerts
        )
        == 2
    )
    yield Source(src, sessions, events, outbox, health, alerts, pending)
    src.close()


def test_the_outbox_is_copied_and_a_pending_event_is_due_once(store: Store, copied: Source) -> None:
    src, pending = copied.src, copied.pending
    assert store.get_session("alpha").webhook_events == ["message_ack", "error"]
    assert store.list_webhooks("alpha", limit=1000) == src.list_webhooks("alpha", limit=1000)
    assert store.webhook_counts("alpha") == {"pending": 1, "delivered": 1, "dead": 1}
    assert store.count_dead_letters("h1") == 1
    due = store.due_webhooks("alpha", datetime.now(UTC) + timedelta(seconds=1))
    assert [r.event_id for r in due] == [pending.event_id]


def test_health_records_and_alerts_are_copied_and_the_active_one_still_counts(
    store: Store, copied: Source
) -> None:
    health, alerts = copied.health, copied.alerts
    got = store.get_health("alpha")
    assert got.same_as(health[0]) and got.updated_at == health[0].updated_at
    strip = {"id"}
    assert [a.model_dump(exclude=strip) for a in store.list_alerts(limit=10)] == [
        a.model_dump(exclude=strip) for a in alerts
    ]
    # the active alert is still the one that counts: raising it again is a no-op
    assert store.raise_alert(alerts[0]) is None
    assert store.pending_alert_notices("h1", T0 - timedelta(days=1)) != []


def test_a_copy_onto_existing_names_is_all_or_nothing(store: Store, copied: Source) -> None:
    with pytest.raises(SessionExists, match="alpha"):
        store.import_rows(
            copied.sessions,
            copied.events,
            actor="copy",
            outbox=copied.outbox,
            health=copied.health,
        )
    assert len(store.list_webhooks("alpha")) == 3, "all or nothing"


def test_every_column_of_a_session_is_copied(store: Store, copied: Source) -> None:
    """Where the auth lives and the failover switch are copied with the rest: a session
    whose auth is in the store stays movable, one whose failover is off stays pinned."""
    beta = store.get_session("beta")
    assert (beta.auth, beta.failover) == (AuthKind.STORE, False)
    alpha = store.get_session("alpha")
    assert (alpha.auth, alpha.failover) == (AuthKind.LOCAL, True)
    strip = {"created_at", "updated_at"}
    assert [s.model_dump(exclude=strip) for s in store.list_sessions()] == [
        s.model_dump(exclude=strip) for s in copied.sessions
    ]
