"""A session as the store holds it, an audit event, and the checks of what an operator
writes into a session (plain records: a runner imports this, not pydantic)."""

from __future__ import annotations

from dataclasses import field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from ecosystem import jsonvalue
from ecosystem.lease import AuthKind
from ecosystem.names import CONNECTORS as CONNECTORS  # defined there: see names.py
from ecosystem.names import DEFAULT_CONNECTOR as DEFAULT_CONNECTOR
from ecosystem.record import EXCLUDE, Record, record
from ecosystem.record import utcnow as utcnow  # where it was defined first
from ecosystem.states import DesiredState, Status

MAX_DESCRIPTION = 500


def check_webhook_url(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    jsonvalue.check_text(value, "webhook URL")
    try:
        parts = urlsplit(value)
        port = parts.port  # raises on a port out of range or not a number
    except ValueError as exc:
        raise ValueError(f"webhook URL {value!r} is not valid: {exc}") from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or port == 0
        or any(c.isspace() or ord(c) < 32 for c in value)
    ):
        raise ValueError(
            f"webhook URL must be an http:// or https:// URL with a host, got {value!r}"
        )
    if not (parts.path + parts.query).isascii():
        raise ValueError(f"webhook URL {value!r}: percent-encode its non-ASCII characters")
    return value


UNSAFE_TEXT = frozenset(
    "\u061c\u200e\u200f\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
"""Bidirectional overrides and isolates (a terminal would show the text after them
reordered: what `show` prints would not be what was typed) and the line and paragraph
separators."""


def unsafe_char(text: str) -> str | None:
    """The first character of ``text`` a terminal would not show as itself: a C0 or C1
    control (U+009B is a one-byte escape on many terminals), DEL, a bidi override, a
    line separator; None when there is none. Tabs pass."""
    for c in text:
        code = ord(c)
        if (code < 32 and c != "\t") or 0x7F <= code <= 0x9F or c in UNSAFE_TEXT:
            return c
    return None


def check_description(value: str) -> str:
    jsonvalue.check_text(value, "description")
    if len(value) > MAX_DESCRIPTION:
        raise ValueError(f"description is {len(value)} characters; at most {MAX_DESCRIPTION}")
    bad = unsafe_char(value)
    if bad is not None:
        raise ValueError(
            f"description must be one line of plain text: U+{ord(bad):04X} is a control "
            "or direction character"
        )
    return value


@record
class Session(Record):
    """A session as the store holds it."""

    name: str
    description: str = ""
    host: str
    port: int
    connector: str = DEFAULT_CONNECTOR
    desired_state: DesiredState = DesiredState.RUNNING
    status: Status = Status.INITIALIZING
    phone: str | None = None
    qr_payload: str | None = None
    qr_expires_at: datetime | None = None
    webhook_url: str | None = None
    webhook_events: list[str] | None = None
    """Events sent to ``webhook_url``; None means all of them."""
    ai_config: dict[str, Any] = field(default_factory=dict)
    timing_config: dict[str, Any] = field(default_factory=dict)
    messages_sent: int = 0
    messages_received: int = 0
    last_error: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    connected_at: datetime | None = None
    last_activity_at: datetime | None = None
    auth: AuthKind = AuthKind.LOCAL
    """Where its WhatsApp auth lives: only ``store`` can fail over or move."""
    failover: bool = True
    """Whether another host takes it over when its host goes silent (with store auth)."""
    device_jid: str | None = None
    """The whatsmeow device ("user:device@server") a neonize session whose auth lives in
    the store opens; None until it is paired (and again after a logout)."""
    api_token_hash: str | None = field(default=None, repr=False, metadata=EXCLUDE)

    @property
    def can_fail_over(self) -> bool:
        return self.auth == AuthKind.STORE and self.failover


@record
class Event(Record):
    """One line of the audit trail: who did what to which session, and when."""

    id: int
    ts: datetime
    session_name: str | None
    actor: str
    action: str
    from_status: str | None = None
    to_status: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


RUNTIME_FIELDS = frozenset(
    {
        "status",
        "phone",
        "qr_payload",
        "qr_expires_at",
        "last_error",
        "connected_at",
        "last_activity_at",
        "messages_sent",
        "messages_received",
        "device_jid",
    }
)
"""Fields a runner reports; everything else is the operator's."""

OPERATOR_FIELDS = frozenset(
    {
        "description",
        "connector",
        "webhook_url",
        "webhook_events",
        "ai_config",
        "timing_config",
        "desired_state",
    }
)
