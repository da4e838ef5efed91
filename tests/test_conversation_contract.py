"""The bot's conversations, part of the store contract (migration 0010, fenced by the
lease epoch since 0012). It runs on every store the contract suite's ``store_factory``
is parametrised with (sqlite, postgres, supabase)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ecosystem.conversations import ChatMessage, Role
from ecosystem.errors import LeaseLost, SessionNotFound
from ecosystem.models import utcnow
from ecosystem.store import Store
from tests.test_lease_contract import _runner_store
from tests.test_store_contract import (  # noqa: F401 - fixtures
    StoreFactory,
    create,
    store,
    store_factory,
)

MARIA = "5511977776666@c.us"
JOAO = "5511955554444@c.us"


def test_messages_come_back_in_order_and_bounded(store: Store) -> None:  # noqa: F811
    create(store, "alpha")
    t0 = utcnow()
    bodies = ["Olá 👋", "Oi! Como posso ajudar?", "Qual o horário? 100%; '\"", "Das 9h às 18h."]
    for i, body in enumerate(bodies):
        role: Role = "user" if i % 2 == 0 else "assistant"
        store.add_message(
            "alpha",
            MARIA,
            ChatMessage(role=role, body=body, created_at=t0 + timedelta(seconds=i), wa_id=f"W{i}"),
        )
    later = t0 + timedelta(seconds=10)
    store.add_message(
        "alpha", JOAO, ChatMessage(role="user", body="outra conversa", created_at=later)
    )

    got = store.recent_messages("alpha", MARIA, 10)
    assert [m.body for m in got] == bodies
    assert [m.role for m in got] == ["user", "assistant", "user", "assistant"]
    assert got[0].wa_id == "W0" and got[0].created_at == t0.replace(
        microsecond=t0.microsecond // 1000 * 1000
    )
    assert [m.body for m in store.recent_messages("alpha", MARIA, 2)] == bodies[2:]
    assert store.recent_messages("alpha", MARIA, 0) == []
    assert store.recent_messages("alpha", "nobody@c.us", 5) == []
    assert [m.body for m in store.recent_messages("alpha", JOAO, 5)] == ["outra conversa"]

    conversations = store.list_conversations("alpha")
    assert [(c.contact, c.messages) for c in conversations] == [(JOAO, 1), (MARIA, 4)]
    maria = conversations[1]
    assert maria.last_reply_at is not None
    assert maria.last_reply_at - (t0 + timedelta(seconds=3)) < timedelta(milliseconds=1)


def test_bot_activity_and_errors(store: Store) -> None:  # noqa: F811
    create(store, "alpha")
    create(store, "beta")
    assert store.bot_activity("alpha").model_dump() == {
        "last_reply_at": None,
        "last_error": None,
        "last_error_at": None,
    }
    t0 = utcnow()
    store.add_message("alpha", MARIA, ChatMessage(role="assistant", body="oi", created_at=t0))
    later = t0 + timedelta(seconds=5)
    store.record_bot_error("alpha", JOAO, "openai answered 401:\n invalid key " + "x" * 600, later)
    activity = store.bot_activity("alpha")
    assert activity.last_reply_at is not None and abs(activity.last_reply_at - t0) < timedelta(
        milliseconds=1
    )
    assert activity.last_error is not None
    assert activity.last_error.startswith("openai answered 401: invalid key")
    assert len(activity.last_error) <= 500 and "\n" not in activity.last_error
    assert activity.last_error_at is not None
    assert abs(activity.last_error_at - later) < timedelta(milliseconds=1)
    # an error does not count as a message of the conversation
    assert {c.contact: c.messages for c in store.list_conversations("alpha")} == {
        JOAO: 0,
        MARIA: 1,
    }
    assert store.bot_activity("beta").last_error is None


def test_conversations_go_with_their_session(store: Store) -> None:  # noqa: F811
    create(store, "alpha")
    store.add_message("alpha", MARIA, ChatMessage(role="user", body="oi"))
    store.delete_session("alpha", actor="t")
    create(store, "alpha")
    assert store.recent_messages("alpha", MARIA, 5) == []
    assert store.list_conversations("alpha") == []
    with pytest.raises(SessionNotFound):
        store.add_message("ghost", MARIA, ChatMessage(role="user", body="oi"))
    with pytest.raises(SessionNotFound):
        store.record_bot_error("ghost", MARIA, "x", utcnow())


def test_a_runner_of_an_older_epoch_cannot_write_the_conversations(
    store_factory: StoreFactory,  # noqa: F811
) -> None:
    """A runner whose lease moved on (a newer runner of the session took it) can neither
    add a message (to a conversation it knows or a new one) nor record a bot error:
    each is refused with LeaseLost and leaves the history as it was. The new holder and
    an unfenced connection (an operator's command) still write."""
    store = store_factory()  # noqa: F811
    create(store, "alpha", host="h1", connector="sim")
    old, old_fence = _runner_store(store_factory, "alpha", "h1")
    t0 = utcnow()
    old.add_message("alpha", MARIA, ChatMessage(role="user", body="oi", created_at=t0))
    old.add_message("alpha", MARIA, ChatMessage(role="assistant", body="olá", created_at=t0))
    before = store.list_conversations("alpha")
    activity = store.bot_activity("alpha")

    new, new_fence = _runner_store(store_factory, "alpha", "h1")
    assert new_fence.epoch == old_fence.epoch + 1
    late = t0 + timedelta(seconds=30)
    with pytest.raises(LeaseLost, match="alpha"):
        old.add_message("alpha", MARIA, ChatMessage(role="assistant", body="x", created_at=late))
    with pytest.raises(LeaseLost, match="alpha"):
        old.add_message("alpha", JOAO, ChatMessage(role="user", body="novo", created_at=late))
    with pytest.raises(LeaseLost, match="alpha"):
        old.record_bot_error("alpha", MARIA, "stale runner", late)
    assert store.list_conversations("alpha") == before
    assert [m.body for m in store.recent_messages("alpha", MARIA, 10)] == ["oi", "olá"]
    assert store.recent_messages("alpha", JOAO, 10) == []
    assert store.bot_activity("alpha") == activity

    new.add_message("alpha", JOAO, ChatMessage(role="user", body="novo", created_at=late))
    old.set_fence(None)  # no fence: an operator's connection again
    old.record_bot_error("alpha", MARIA, "written unfenced", late)
    assert {c.contact: c.messages for c in store.list_conversations("alpha")} == {
        JOAO: 1,
        MARIA: 2,
    }
    assert store.bot_activity("alpha").last_error == "written unfenced"
