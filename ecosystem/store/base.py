"""The store contract every implementation (sqlite, postgres, supabase) honours."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from ecosystem.models import Event, NewSession, Session
from ecosystem.webhooks import DeliveryState, WebhookEvent


class Store(abc.ABC):
    """Session rows, the port ledger and the audit trail.

    Every method is blocking; UI code calls them from worker threads.
    """

    kind: str = "?"

    @abc.abstractmethod
    def describe(self) -> str:
        """Where the data lives, without secrets (a path, a host/db name)."""

    @abc.abstractmethod
    def migrate(self) -> list[str]:
        """Apply pending migrations; returns the names of those applied."""

    @abc.abstractmethod
    def schema_version(self) -> int:
        """The newest migration applied (0 for an empty database)."""

    @abc.abstractmethod
    def create_session(
        self,
        new: NewSession,
        *,
        host: str,
        ports: range,
        exclude_ports: Iterable[int],
        max_sessions: int,
        actor: str,
        api_token_hash: str | None = None,
    ) -> Session:
        """Insert the session and reserve its port in one atomic step.

        The port is the lowest of ``ports`` not held by another session of ``host`` and
        not in ``exclude_ports`` (ports some process already binds). Raises
        SessionExists, or CapacityError when ``max_sessions`` is reached or no port is
        free.
        """

    @abc.abstractmethod
    def get_session(self, name: str) -> Session:
        """Raises SessionNotFound."""

    @abc.abstractmethod
    def list_sessions(self, host: str | None = None) -> list[Session]:
        """Every session (of one host when ``host`` is given), ordered by name."""

    @abc.abstractmethod
    def update_session(
        self, name: str, changes: Mapping[str, Any], *, actor: str, action: str
    ) -> Session:
        """Change operator fields (config, desired state) and record the event."""

    @abc.abstractmethod
    def set_runtime(self, name: str, changes: Mapping[str, Any], *, actor: str) -> Session:
        """Change runner-reported fields; a status change is recorded as an event."""

    @abc.abstractmethod
    def delete_session(self, name: str, *, actor: str) -> None:
        """Remove the row (freeing its port); the audit trail keeps the deletion."""

    @abc.abstractmethod
    def add_event(
        self,
        session_name: str | None,
        action: str,
        *,
        actor: str,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Record an action in the audit trail."""

    @abc.abstractmethod
    def list_events(self, session_name: str | None = None, limit: int = 100) -> list[Event]:
        """Newest first."""

    # -- webhook outbox (migration 0002) ----------------------------------------------

    @abc.abstractmethod
    def enqueue_webhook(self, event: WebhookEvent) -> None:
        """Insert an event into the outbox; an ``event_id`` already there is left as it
        is. Raises SessionNotFound when the session is gone."""

    @abc.abstractmethod
    def due_webhooks(self, session_name: str, now: datetime, limit: int = 50) -> list[WebhookEvent]:
        """Pending events whose ``next_attempt_at`` is not after ``now``, oldest due first."""

    @abc.abstractmethod
    def next_webhook_due(self, session_name: str) -> datetime | None:
        """When the earliest pending event is due (None when nothing is pending)."""

    @abc.abstractmethod
    def record_webhook_attempt(
        self,
        event_id: str,
        *,
        state: DeliveryState,
        attempts: int,
        at: datetime,
        next_attempt_at: datetime | None = None,
        status: int | None = None,
        error: str | None = None,
    ) -> None:
        """Store the outcome of one delivery attempt (``next_attempt_at`` only while
        pending; ``delivered_at`` becomes ``at`` when delivered)."""

    @abc.abstractmethod
    def list_webhooks(
        self, session_name: str, state: DeliveryState | None = None, limit: int = 100
    ) -> list[WebhookEvent]:
        """A session's outbox rows, newest first (one state only when given)."""

    @abc.abstractmethod
    def webhook_counts(self, session_name: str) -> dict[str, int]:
        """How many rows per state (`pending`, `delivered`, `dead`; 0 when none)."""

    @abc.abstractmethod
    def replay_webhooks(self, session_name: str, now: datetime) -> int:
        """Dead-lettered events back to pending, due ``now``, attempts reset; the count."""

    @abc.abstractmethod
    def prune_webhooks(self, session_name: str, delivered_before: datetime) -> int:
        """Delete delivered rows delivered before ``delivered_before``; the count."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
