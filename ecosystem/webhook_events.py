"""Webhooks: the events a session sends, their outbox rows, signatures and secrets.

A runner writes every event to the store's outbox before it tries to deliver it, so an
event survives a runner killed at any moment; delivery is at least once, and the event
id (also in the `X-Zapvisor-Event-Id` header) lets a receiver drop duplicates.
"""

from __future__ import annotations

import os
from dataclasses import field
from datetime import datetime
from pathlib import Path
from typing import Any

from ecosystem.errors import ZapvisorError
from ecosystem.paths import StatePaths, write_private
from ecosystem.record import Record, record, utcnow
from ecosystem.states import DeliveryState as DeliveryState  # where it was defined first

EVENTS = ("message_received", "message_ack", "connection_change", "qr_code", "error")
"""Every event a session can send (seed 002 §5)."""

SIGNATURE_HEADER = "X-Zapvisor-Signature"
TIMESTAMP_HEADER = "X-Zapvisor-Timestamp"
EVENT_HEADER = "X-Zapvisor-Event"
ID_HEADER = "X-Zapvisor-Event-Id"


@record
class WebhookEvent(Record):
    """One event in a session's outbox, with where its delivery stands."""

    event_id: str
    session_name: str
    event: str
    payload: dict[str, Any]
    created_at: datetime = field(default_factory=utcnow)
    state: DeliveryState = DeliveryState.PENDING
    attempts: int = 0
    next_attempt_at: datetime = field(default_factory=utcnow)
    last_attempt_at: datetime | None = None
    last_status: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None


def uuid4_hex() -> str:
    """``uuid.uuid4().hex``, the same 32 digits (random, with a version 4 UUID's
    version and variant bits), without importing uuid: its import reads the platform
    (~2.5 ms of a runner's start, for the first event it makes)."""
    b = bytearray(os.urandom(16))  # what secrets.token_bytes gives
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    return b.hex()


def new_event(session: str, event: str, data: dict[str, Any]) -> WebhookEvent:
    """An outbox row for ``event``; the payload follows seed 002 §5.2 (`event`,
    `sessionId`, `timestamp`) plus `id`, the idempotency id."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    now = utcnow()
    event_id = "evt_" + uuid4_hex()
    payload = {
        "event": event,
        "id": event_id,
        "sessionId": session,
        "timestamp": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        **data,
    }
    return WebhookEvent(
        event_id=event_id,
        session_name=session,
        event=event,
        payload=payload,
        created_at=now,
        next_attempt_at=now,
    )


def check_events(values: list[str] | None) -> list[str] | None:
    """A subscription list: None (or empty) means every event."""
    if not values:
        return None
    unknown = [v for v in values if v not in EVENTS]
    if unknown:
        raise ValueError(
            f"unknown webhook event(s) {', '.join(map(repr, unknown))}: "
            f"choose from {', '.join(EVENTS)}"
        )
    return list(dict.fromkeys(values))


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256(secret, "<timestamp>.<body>"): the timestamp is
    signed too, so a captured request cannot be replayed later with a new one."""
    import hashlib  # with hmac and secrets, where used: every command imports this module
    import hmac

    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """What a receiver does (kept here for tests and for Python receivers)."""
    import hmac

    return hmac.compare_digest(sign(secret, timestamp, body), signature)


# -- the per-session signing secret: plaintext only in secrets/ on the host, 0600 ----------


def secret_file(paths: StatePaths, name: str) -> Path:
    return paths.api_token_file(name).with_suffix(".webhook-secret")


def new_secret() -> str:
    import secrets

    return "whsec_" + secrets.token_urlsafe(32)


def save_secret(paths: StatePaths, name: str, secret: str) -> Path:
    path = secret_file(paths, name)
    write_private(path, secret + "\n")
    return path


def read_secret(paths: StatePaths, name: str) -> str:
    path = secret_file(paths, name)
    try:
        return path.read_text("utf-8").strip()
    except FileNotFoundError:
        raise ZapvisorError(
            f"no webhook secret for {name} on this host ({path} is missing): "
            f"`zapvisor webhooks {name} --rotate-secret` makes a new one"
        ) from None


def ensure_secret(paths: StatePaths, name: str) -> str:
    """The session's secret, made on first use (sessions created before webhooks had
    one get theirs here)."""
    try:
        return read_secret(paths, name)
    except ZapvisorError:
        secret = new_secret()
        save_secret(paths, name, secret)
        return secret
