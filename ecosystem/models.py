"""What an operator writes into a session (checked records), and, re-exported, the
session record and the shapes the stores, CLI and UI exchange."""

from __future__ import annotations

from dataclasses import field
from typing import Any, ClassVar

from ecosystem import jsonvalue
from ecosystem.lease import AuthKind
from ecosystem.names import CONNECTORS as CONNECTORS
from ecosystem.names import DEFAULT_CONNECTOR as DEFAULT_CONNECTOR
from ecosystem.names import validate_name
from ecosystem.record import Record, record
from ecosystem.session import MAX_DESCRIPTION as MAX_DESCRIPTION
from ecosystem.session import OPERATOR_FIELDS as OPERATOR_FIELDS
from ecosystem.session import RUNTIME_FIELDS as RUNTIME_FIELDS
from ecosystem.session import UNSAFE_TEXT as UNSAFE_TEXT
from ecosystem.session import Event as Event
from ecosystem.session import Session as Session
from ecosystem.session import check_description as check_description
from ecosystem.session import check_webhook_url as check_webhook_url
from ecosystem.session import unsafe_char as unsafe_char
from ecosystem.session import utcnow as utcnow
from ecosystem.states import DesiredState


def _connector(value: str) -> str:
    if value not in CONNECTORS:
        raise ValueError(f"unknown connector {value!r}: choose one of {', '.join(CONNECTORS)}")
    return value


def _events(value: list[str] | None) -> list[str] | None:
    from ecosystem.webhook_events import check_events

    return check_events(value)


def _ai_config(value: dict[str, Any]) -> dict[str, Any]:
    jsonvalue.check(value, "ai_config")
    if not value:
        return value  # nothing to check: the checks' models (pydantic) stay unloaded
    from ecosystem.botconfig import check_ai_config

    return check_ai_config(value)


def _timing_config(value: dict[str, Any]) -> dict[str, Any]:
    jsonvalue.check(value, "timing_config")
    if not value:
        return value
    from ecosystem.botconfig import check_timing_config

    return check_timing_config(value)


@record
class SessionFields(Record):
    """What an operator sets on a session (create form, `zapvisor config`): each field
    checked when the record is made, a key that is not a field refused."""

    forbid_extra: ClassVar[bool] = True

    description: str = ""
    connector: str = DEFAULT_CONNECTOR
    webhook_url: str | None = None
    webhook_events: list[str] | None = None
    ai_config: dict[str, Any] = field(default_factory=dict)
    timing_config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check("description", check_description)
        self._check("connector", _connector)
        self._check("webhook_url", check_webhook_url)
        self._check("webhook_events", _events)
        self._check("ai_config", _ai_config)
        self._check("timing_config", _timing_config)


@record
class NewSession(SessionFields):
    """A session to create."""

    name: str
    desired_state: DesiredState = DesiredState.RUNNING
    auth: AuthKind | None = None
    """Where its WhatsApp auth lives; None lets the orchestrator choose (the store when
    the store is shared and the connector can keep its auth there)."""
    failover: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check("name", validate_name)
