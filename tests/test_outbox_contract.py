"""The webhook outbox part of the store contract (migration 0002). It runs on every store
the contract suite's ``store_factory`` is parametrised with (sqlite, postgres, supabase)."""

from __future__ import annotations

import multiprocessing
from datetime import datetime, timedelta
from typing import Any

import pytest

from ecosystem.errors import SessionNotFound
from ecosystem.models import utcnow
from ecosystem.store import Store
from ecosystem.webhook_events import DeliveryState, new_event
from tests.test_store_contract import (  # noqa: F401 - fixtures
    StoreFactory,
    create,
    store,
    store_factory,
)


@pytest.fixture
def outbox(store: Store) -> Store:  # noqa: F811
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

    assert store.next_webhook_due("alpha") == first.next_attempt_at.replace(
        microsecond=first.next_attempt_at.microsecond // 1000 * 1000
    )
    due = store.due_webhooks("alpha", now + timedelta(seconds=1))
    assert [e.event_id for e in due] == [first.event_id]
    assert due[0].payload["message"]["body"] == "olá 👋" and due[0].payload["id"] == first.event_id
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
    create(store, "gamma", host="h2")
    assert (store.count_dead_letters("h1"), store.count_dead_letters("h2")) == (1, 0)
    assert store.replay_webhooks("alpha", now) == 1
    assert store.count_dead_letters("h1") == 0
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


def test_claims_are_leased(outbox: Store) -> None:
    """A claimed event is the claimer's until its lease ends: a runner killed while
    delivering leaves it due again then, not lost and not handed to two at once."""
    store = outbox  # noqa: F811
    create(store, "alpha")
    now = utcnow()
    rows = [new_event("alpha", "message_ack", {"messageId": str(i)}) for i in range(3)]
    for i, row in enumerate(rows):
        row.next_attempt_at = now - timedelta(seconds=3 - i)
        store.enqueue_webhook(row)
    lease = timedelta(seconds=60)
    first = store.due_webhooks("alpha", now, 2, lease=lease)
    assert [r.event_id for r in first] == [rows[0].event_id, rows[1].event_id]
    assert all(r.next_attempt_at == _ms(now + lease) for r in first)
    assert [r.event_id for r in store.due_webhooks("alpha", now, 5, lease=lease)] == [
        rows[2].event_id
    ]
    assert store.due_webhooks("alpha", now, 5, lease=lease) == []
    assert store.next_webhook_due("alpha") == _ms(now + lease)

    # one attempt recorded (failed, retry in 1 s); the others' claimer died
    store.record_webhook_attempt(
        rows[0].event_id,
        state=DeliveryState.PENDING,
        attempts=1,
        at=now,
        next_attempt_at=now + timedelta(seconds=1),
        error="HTTP 503",
    )
    assert store.next_webhook_due("alpha") == _ms(now + timedelta(seconds=1))
    retry = store.due_webhooks("alpha", now + timedelta(seconds=2), lease=lease)
    assert [(r.event_id, r.attempts) for r in retry] == [(rows[0].event_id, 1)]
    expired = store.due_webhooks("alpha", now + lease + timedelta(seconds=1), lease=lease)
    assert [r.event_id for r in expired] == [rows[1].event_id, rows[2].event_id]
    assert store.webhook_counts("alpha") == {"pending": 3, "delivered": 0, "dead": 0}


def _ms(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _claim_all(factory: StoreFactory, when: datetime, start: Any, out: Any) -> None:
    mine = factory()
    start.wait(60)
    claimed: list[str] = []
    while batch := mine.due_webhooks("alpha", when, 2, lease=timedelta(minutes=10)):
        claimed += [r.event_id for r in batch]
    out.put(claimed)


def test_concurrent_claims_hand_each_event_to_one_claimer(
    store_factory: StoreFactory,  # noqa: F811
) -> None:
    """Two processes (two runners of one session, say) claim the same outbox at once:
    every event goes to exactly one of them."""
    store = store_factory()  # noqa: F811
    create(store, "alpha")
    events = [new_event("alpha", "message_ack", {"messageId": str(i)}) for i in range(40)]
    for row in events:
        store.enqueue_webhook(row)
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    when = utcnow() + timedelta(seconds=1)
    procs = [ctx.Process(target=_claim_all, args=(store_factory, when, start, out)) for _ in "ab"]
    for p in procs:
        p.start()
    start.set()
    got = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    both = got[0] + got[1]
    assert len(both) == len(set(both)) == len(events), "each event claimed once"
    assert set(both) == {e.event_id for e in events}
