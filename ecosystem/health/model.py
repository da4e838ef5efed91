"""What the health monitor keeps per session and the alerts it raises (store shapes)."""

from __future__ import annotations

from dataclasses import field
from datetime import datetime
from enum import StrEnum
from typing import Any

from ecosystem.record import Record, record, utcnow

MONITOR_ACTOR = "health"
"""The actor recorded in the audit trail for the monitor's own actions."""


@record
class SessionHealth(Record):
    """One session's restart history, as the monitor last saved it.

    The monitor is its only writer; the CLI and the TUI read it."""

    name: str
    restarts: int = 0
    """Restarts the monitor made (after exits, hangs, memory, stuck states)."""
    exits: int = 0
    """Unexpected exits seen in total."""
    recent_exits: list[datetime] = field(default_factory=list)
    """Times of exits and of the monitor's forced restarts (hung, memory, stuck) still
    inside the crash window, oldest first."""
    last_exit_status: int | None = None
    last_exit_at: datetime | None = None
    last_restart_at: datetime | None = None
    last_restart_reason: str | None = None
    next_restart_at: datetime | None = None
    """When a pending restart is due (backoff, or a restart in progress)."""
    parked_at: datetime | None = None
    """Set when a crash loop parked the session; cleared when an operator starts it."""
    why_down: str | None = None
    stderr_tail: str | None = None
    updated_at: datetime = field(default_factory=utcnow)

    def same_as(self, other: SessionHealth) -> bool:
        """Equal but for ``updated_at`` (so unchanged rows are not written again)."""
        return self.model_dump(exclude={"updated_at"}) == other.model_dump(exclude={"updated_at"})


BOT_KEY = "bot:"
"""Key prefix of the alerts a session's runner raises and clears about its bot
(`bot:NAME`); the monitor leaves them alone."""


class Severity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


class AlertKind(StrEnum):
    RAM = "ram"
    CPU = "cpu"
    DISK = "disk"
    SESSION_ERROR = "session_error"
    RUNNER_FATAL = "runner_fatal"
    WEBHOOK_DEAD_LETTERS = "webhook_dead_letters"
    BOT_FAILING = "bot_failing"
    FAILOVER_UNPLACED = "failover_unplaced"
    HOST_SILENT = "host_silent"


@record
class NewAlert(Record):
    """An alert condition that holds now. ``key`` identifies it: while an alert with
    the same host and key is active, raising it again changes nothing."""

    host: str
    key: str
    kind: AlertKind
    severity: Severity = Severity.WARNING
    message: str
    session_name: str | None = None
    value: float | None = None


@record
class Alert(NewAlert):
    """An alert as the store keeps it."""

    id: int
    raised_at: datetime
    cleared_at: datetime | None = None
    raise_sent_at: datetime | None = None
    clear_sent_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.cleared_at is None

    def to_json(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        data["active"] = self.active
        return data
