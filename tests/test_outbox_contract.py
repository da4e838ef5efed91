"""The webhook outbox part of the store contract (migration 0002). It runs on every store
the contract suite's ``store_factory`` is parametrised with."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ecosystem.errors import SessionNotFound
from ecosystem.models import utcnow
from ecosystem.store import Store
from ecosystem.webhooks import DeliveryState, new_event
from tests.test_store_contract import create, store, store_factory  # noqa: F401 - fixtures


@pytest.fixture
def outbox(store: Store) -> Store:  # noqa: F811
    if store.kind != "sqlite":
        pytest.skip(f"the webhook outbox is not ported to the {store.kind} store yet")
    return store


def test_enqueue_due_and_deliver(outbox: Store) -> None:
    store = outbox  # noqa: F811
    create(store, "alpha")
    create(store, "beta")
    now = utcnow()
    first = new_event("alpha", "message_received", {"message": {"body": "olá 👋"}})
    later = new_event("alpha", "message_ack", {"messageId": "X", "status": "read"})
    later.next_attempt_at = now + timedelta(seconds=30)
    store.enqueue_webhook(first)
    store.enqueue_webhook(later)
    store.enqueue_webhook(first)  # the same id again changes nothing
    store.enqueue_webhook(new_event("beta", "qr_code", {"qrCode": "data:"}))

    due = store.due_webhooks("alpha", now + timedelta(seconds=1))
    assert [e.event_id for e in due] == [first.event_id]
    assert due[0].payload["message"]["body"] == "olá 👋" and due[0].payload["id"] == first.event_id
    assert store.next_webhook_due("alpha") == first.next_attempt_at.replace(
        microsecond=first.next_attempt_at.microsecond // 1000 * 1000
    )
    assert store.webhook_counts("alpha") == {"pending": 2, "delivered": 0, "dead": 0}

    retry_at = now + timedelta(seconds=5)
    store.record_webhook_attempt(
        first.event_id,
        state=DeliveryState.PENDING,
        attempts=1,
        at=now,
        next_attempt_at=retry_at,
        status=503,
        error="HTTP 503",
    )
    assert store.due_webhooks("alpha", now + timedelta(seconds=1)) == []
    got = store.due_webhooks("alpha", now + timedelta(seconds=6))[0]
    assert (got.attempts, got.last_status, got.last_error) == (1, 503, "HTTP 503")
    store.record_webhook_attempt(
        first.event_id, state=DeliveryState.DELIVERED, attempts=2, at=now, status=200
    )
    rows = store.list_webhooks("alpha")
    assert [r.event_id for r in rows] == [later.event_id, first.event_id]  # newest first
    assert rows[1].state == DeliveryState.DELIVERED and rows[1].delivered_at is not None
    assert store.list_webhooks("alpha", DeliveryState.DELIVERED, 10)[0].event_id == first.event_id
    assert store.webhook_counts("beta")["pending"] == 1


def test_dead_letters_replay_prune_and_cascade(outbox: Store) -> None:
    store = outbox  # noqa: F811
    create(store, "alpha")
    now = utcnow()
    dead = new_event("alpha", "error", {"error": "x", "code": "Y", "recoverable": True})
    done = new_event("alpha", "connection_change", {"status": "connected"})
    for row in (dead, done):
        store.enqueue_webhook(row)
    store.record_webhook_attempt(
        dead.event_id, state=DeliveryState.DEAD, attempts=4, at=now, error="gave up"
    )
    store.record_webhook_attempt(
        done.event_id, state=DeliveryState.DELIVERED, attempts=1, at=now - timedelta(days=8)
    )
    assert store.next_webhook_due("alpha") is None
    assert store.replay_webhooks("alpha", now) == 1
    again = store.due_webhooks("alpha", now)
    assert [(r.event_id, r.attempts, r.state) for r in again] == [
        (dead.event_id, 0, DeliveryState.PENDING)
    ]
    assert store.prune_webhooks("alpha", now - timedelta(days=7)) == 1
    assert store.webhook_counts("alpha") == {"pending": 1, "delivered": 0, "dead": 0}

    store.delete_session("alpha", actor="t")
    assert store.list_webhooks("alpha") == []
    with pytest.raises(SessionNotFound):
        store.enqueue_webhook(new_event("alpha", "qr_code", {}))


def test_a_rotated_token_hash_is_stored(store: Store) -> None:  # noqa: F811
    """`zapvisor token --rotate` relies on it (every store)."""
    create(store, "alpha")
    store.update_session("alpha", {"api_token_hash": "cd" * 32}, actor="t", action="token")
    assert store.get_session("alpha").api_token_hash == "cd" * 32


def test_webhook_events_update(outbox: Store) -> None:
    store = outbox  # noqa: F811
    create(store, "alpha")
    assert store.get_session("alpha").webhook_events is None
    store.update_session("alpha", {"webhook_events": ["message_ack"]}, actor="t", action="webhook")
    assert store.get_session("alpha").webhook_events == ["message_ack"]
    assert store.list_events("alpha", 1)[0].detail == {"webhook_events": "changed"}
