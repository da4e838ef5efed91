"""What an operator writes into a session (pydantic: its validators and messages), and,
re-exported, the session record and the shapes the stores, CLI and UI exchange."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from ecosystem import jsonvalue
from ecosystem.lease import AuthKind
from ecosystem.names import CONNECTORS as CONNECTORS
from ecosystem.names import DEFAULT_CONNECTOR as DEFAULT_CONNECTOR
from ecosystem.names import validate_name
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


class SessionFields(BaseModel):
    """What an operator sets on a session (create form, `zapvisor config`)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    description: str = ""
    connector: str = DEFAULT_CONNECTOR
    webhook_url: str | None = None
    webhook_events: list[str] | None = None
    ai_config: dict[str, Any] = Field(default_factory=dict)
    timing_config: dict[str, Any] = Field(default_factory=dict)

    @field_validator("description")
    @classmethod
    def _description(cls, value: str) -> str:
        return check_description(value)

    @field_validator("connector")
    @classmethod
    def _connector(cls, value: str) -> str:
        if value not in CONNECTORS:
            raise ValueError(f"unknown connector {value!r}: choose one of {', '.join(CONNECTORS)}")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        return check_webhook_url(value)

    @field_validator("ai_config", "timing_config")
    @classmethod
    def _json_config(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        jsonvalue.check(value, str(info.field_name))
        return value

    @field_validator("webhook_events")
    @classmethod
    def _webhook_events(cls, value: list[str] | None) -> list[str] | None:
        from ecosystem.webhook_events import check_events

        return check_events(value)

    @field_validator("ai_config")
    @classmethod
    def _ai_config(cls, value: dict[str, Any]) -> dict[str, Any]:
        from ecosystem.botconfig import check_ai_config

        return check_ai_config(value)

    @field_validator("timing_config")
    @classmethod
    def _timing_config(cls, value: dict[str, Any]) -> dict[str, Any]:
        from ecosystem.botconfig import check_timing_config

        return check_timing_config(value)


class NewSession(SessionFields):
    """A session to create."""

    name: str
    desired_state: DesiredState = DesiredState.RUNNING
    auth: AuthKind | None = None
    """Where its WhatsApp auth lives; None lets the orchestrator choose (the store when
    the store is shared and the connector can keep its auth there)."""
    failover: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return validate_name(value)
