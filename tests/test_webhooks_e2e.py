"""Webhooks end to end: sim runners under a real supervisord deliver to a real HTTP
receiver on loopback, through the store's durable outbox."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from ecosystem import runner_client, webhook_events
from ecosystem.store.sqlite import SQLiteStore
from ecosystem.webhook_events import DeliveryState
from tests.conftest import Env, wait_for
from tests.receiver import Receiver

pytestmark = pytest.mark.e2e


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.down()


def token(zv: Env, name: str) -> str:
    return (zv.home / "secrets" / f"{name}.token").read_text().strip()


def api(zv: Env, name: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    port = zv.json("show", name)["port"]
    return runner_client.call(
        "127.0.0.1", port, path, method=method, token=token(zv, name), body=body, timeout=10
    )


def paired(zv: Env, name: str, url: str) -> None:
    zv.cli("create", name, "--connector", "sim", "--webhook-url", url)
    zv.cli("qr", name, "--wait", "20")
    zv.cli("sim-scan", name)
    assert zv.json("show", name)["status"] == "connected"


def test_acks_inbound_status_and_signatures(zv: Env, receiver: Receiver) -> None:
    paired(zv, "hooks", receiver.url)

    status, sent = api(
        zv, "hooks", "POST", "/send-message", {"phone": "5511988887777", "message": "oi"}
    )
    assert status == 200 and sent["success"] and sent["to"] == "5511988887777@c.us"
    acks = wait_for(lambda: len(receiver.of("message_ack")) >= 3 and receiver.of("message_ack"))
    assert [a.payload["status"] for a in acks] == ["sent", "delivered", "read"]
    assert {a.payload["messageId"] for a in acks} == {sent["id"]}

    status, _ = api(
        zv,
        "hooks",
        "POST",
        "/sim/inbound",
        {"from": "5511977776666", "body": "Olá, tudo bem?", "name": "Maria"},
    )
    assert status == 200
    got = wait_for(lambda: receiver.of("message_received"))[0].payload
    assert got["sessionId"] == "hooks" and got["event"] == "message_received"
    message = got["message"]
    assert message["body"] == "Olá, tudo bem?" and message["from"] == "5511977776666@c.us"
    assert message["sender"] == {"name": "Maria", "phone": "5511977776666"}

    # the pairing produced qr_code and connection_change events, in order
    assert receiver.of("qr_code")[0].payload["qrCode"].startswith("data:image/png;base64,")
    changes = [
        (c.payload["previousStatus"], c.payload["status"]) for c in receiver.of("connection_change")
    ]
    assert ("waiting_scan", "connected") in changes

    # a dropped link reports phone_disconnected and comes back by itself
    api(zv, "hooks", "POST", "/sim/disconnect", {"kind": "phone", "seconds": 0.3})
    wait_for(
        lambda: (
            ("phone_disconnected", "connected")
            in [
                (c.payload["previousStatus"], c.payload["status"])
                for c in receiver.of("connection_change")
            ]
        )
    )

    # every delivery is signed with the session's secret, and ids are unique
    secret = zv.cli("webhooks", "hooks", "--secret").stdout.strip()
    assert secret.startswith("whsec_")
    for d in receiver.deliveries:
        assert webhook_events.verify(
            secret, d.headers["x-zapvisor-timestamp"], d.body, d.headers["x-zapvisor-signature"]
        )
        assert d.headers["x-zapvisor-event-id"] == d.payload["id"]
    ids = [d.payload["id"] for d in receiver.deliveries]
    assert len(ids) == len(set(ids))
    report = zv.json("webhooks", "hooks")
    assert report["counts"]["delivered"] == len(receiver.deliveries)
    assert report["counts"]["pending"] == 0 and report["counts"]["dead"] == 0
    # the status counters follow
    shown = zv.json("show", "hooks")
    assert shown["messages_sent"] == 1 and shown["messages_received"] == 1


def outbox(zv: Env) -> SQLiteStore:
    """The runner's store, read directly: polling it through the CLI would start a
    Python process per look."""
    return SQLiteStore(zv.home / "zapvisor.db")


def counts(zv: Env, name: str) -> dict[str, int]:
    store = outbox(zv)
    try:
        return store.webhook_counts(name)
    finally:
        store.close()


def rows(zv: Env, name: str, state: DeliveryState | None = None) -> list[dict[str, Any]]:
    store = outbox(zv)
    try:
        return [r.model_dump(mode="json") for r in store.list_webhooks(name, state, 100)]
    finally:
        store.close()


def test_receiver_down_then_up_delivers_once_and_dead_letters_replay(
    make_env: Any, receiver: Receiver
) -> None:
    zv = make_env(ZAPVISOR_WEBHOOK_RETRY_SCHEDULE="0,1,2.5")
    paired(zv, "retry", receiver.url)
    wait_for(lambda: counts(zv, "retry")["pending"] == 0)
    api(zv, "retry", "PUT", "/webhook", {"events": ["message_received"]})

    receiver.down()
    api(zv, "retry", "POST", "/sim/inbound", {"from": "5511911112222", "body": "first"})
    # two failed attempts, at least the schedule's second apart
    row = wait_for(lambda: [r for r in rows(zv, "retry") if r["attempts"] == 2], timeout=20)[0]
    assert row["state"] == "pending" and "ConnectionRefused" in row["last_error"]
    created = datetime.fromisoformat(row["created_at"])
    assert (datetime.fromisoformat(row["last_attempt_at"]) - created).total_seconds() >= 0.9
    assert (
        datetime.fromisoformat(row["next_attempt_at"])
        - datetime.fromisoformat(row["last_attempt_at"])
    ).total_seconds() >= 2.4
    receiver.up()
    got = wait_for(lambda: receiver.of("message_received"), timeout=20)
    assert len(got) == 1 and got[0].headers["x-zapvisor-attempt"] == "3"
    assert got[0].payload["message"]["body"] == "first"
    wait_for(lambda: counts(zv, "retry")["delivered"] >= 1)

    # a receiver that answers 4xx (not 408/429) is not retried: dead at once
    receiver.status = 410
    api(zv, "retry", "POST", "/sim/inbound", {"from": "5511911112222", "body": "second"})
    dead = wait_for(lambda: rows(zv, "retry", DeliveryState.DEAD))
    assert dead[0]["attempts"] == 1 and dead[0]["last_status"] == 410
    # 503 is retried until the schedule runs out, then dead-lettered
    receiver.status = 503
    api(zv, "retry", "POST", "/sim/inbound", {"from": "5511911112222", "body": "third"})
    wait_for(lambda: counts(zv, "retry")["dead"] == 2, timeout=30)
    assert sorted(r["attempts"] for r in rows(zv, "retry", DeliveryState.DEAD)) == [1, 3]

    # replay: both dead letters are delivered once the receiver is fine
    receiver.status = 200
    before = len(receiver.of("message_received"))
    replayed = zv.json("webhooks", "retry", "--replay")
    assert replayed["replayed"] == 2
    wait_for(lambda: counts(zv, "retry")["dead"] == 0 and counts(zv, "retry")["pending"] == 0)
    bodies = [d.payload["message"]["body"] for d in receiver.of("message_received")[before:]]
    assert bodies[-2:] in (["second", "third"], ["third", "second"])


def test_runner_killed_with_events_pending_loses_none(make_env: Any, receiver: Receiver) -> None:
    """kill -9 while the receiver is down: after supervisord restarts the runner every
    event is delivered; a repeat can only carry an event id already seen. (A short
    delivery timeout keeps the claim lease of an event caught mid-delivery short.)"""
    zv = make_env(
        ZAPVISOR_WEBHOOK_RETRY_SCHEDULE=",".join(["0"] + ["1"] * 30), ZAPVISOR_WEBHOOK_TIMEOUT="2"
    )
    paired(zv, "durable", receiver.url)
    api(zv, "durable", "PUT", "/webhook", {"events": ["message_received"]})
    receiver.down()
    bodies = [f"msg-{i}" for i in range(6)]
    for body in bodies:
        status, _ = api(
            zv, "durable", "POST", "/sim/inbound", {"from": "5511933334444", "body": body}
        )
        assert status == 200
    pid = zv.json("show", "durable")["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_for(
        lambda: (
            (s := zv.json("show", "durable"))["pid"] not in (None, pid)
            and s["status"] == "connected"
        ),
        timeout=90,  # deadlines: the restart and the retries are slower on a loaded machine
    )
    receiver.up()
    wait_for(
        lambda: (
            {d.payload["message"]["body"] for d in receiver.of("message_received")} == set(bodies)
        ),
        timeout=90,
    )
    got = receiver.of("message_received")
    ids = {d.payload["id"] for d in got}
    assert len(ids) == len(bodies)
    final = wait_for(lambda: (c := counts(zv, "durable"))["pending"] == 0 and c)
    assert final["dead"] == 0
