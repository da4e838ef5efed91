"""A session as the operator sees it: the store's row joined with supervisord's facts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ecosystem.conversations import BotActivity
from ecosystem.health.model import SessionHealth
from ecosystem.models import Session
from ecosystem.redact import redact_url
from ecosystem.states import EXITED_STATES, SIGNALLABLE_STATES, DesiredState, ProcessState
from ecosystem.supctl.rpc import ProcessInfo

JSON_FIELDS = (
    "name",
    "description",
    "host",
    "port",
    "connector",
    "desired_state",
    "status",
    "process_state",
    "pid",
    "uptime_seconds",
    "phone",
    "qr_payload",
    "qr_expires_at",
    "webhook_url",
    "webhook_events",
    "ai_config",
    "timing_config",
    "messages_sent",
    "messages_received",
    "last_error",
    "exit_status",
    "spawn_error",
    "restarts",
    "last_exit_status",
    "last_exit_at",
    "last_restart_reason",
    "why_down",
    "parked_at",
    "next_restart_at",
    "created_at",
    "updated_at",
    "connected_at",
    "last_activity_at",
    "host_unreachable",
    "ai_key",
    "ai_last_reply_at",
    "ai_last_error",
    "ai_last_error_at",
)
"""The stable field names of `list --json` / `show --json`, in order."""


@dataclass(frozen=True)
class SessionView:
    session: Session
    process: ProcessInfo | None
    """None when supervisord has no program for the session (or is down)."""
    health: SessionHealth | None = None
    """The health monitor's record (restarts, exits, parking); None when it has none."""
    unreachable: str | None = None
    """Why its host did not answer ("host unreachable since 12:03:04"); the process is
    then the last one known, or None."""
    bot: BotActivity | None = None
    """The bot's last reply and last error (`show` only; None in listings)."""
    ai_key: str | None = None
    """Where the bot's provider key comes from (`secrets/NAME.openai-key`, `OPENAI_KEY`),
    never the key; None when there is none, or in listings."""

    @property
    def name(self) -> str:
        return self.session.name

    @property
    def process_state(self) -> str | None:
        return self.process.state if self.process else None

    @property
    def pid(self) -> int | None:
        if self.process and self.process.state in SIGNALLABLE_STATES:
            return self.process.pid
        return None

    @property
    def uptime(self) -> int | None:
        return self.process.uptime if self.process else None

    @property
    def display_status(self) -> str:
        """The session status while its runner runs; the process state otherwise,
        so a killed runner never shows a stale "connected"."""
        if self.process is None:
            return "UNREACHABLE" if self.unreachable else "NO PROGRAM"
        if self.process.state == ProcessState.RUNNING:
            return str(self.session.status)
        return self.process.state

    @property
    def restarts(self) -> int:
        return self.health.restarts if self.health else 0

    @property
    def parked(self) -> bool:
        return bool(self.health and self.health.parked_at)

    @property
    def why_down(self) -> str | None:
        """Why the runner is not running, in one line; None while it runs."""
        proc, h = self.process, self.health
        if proc is not None and proc.state in SIGNALLABLE_STATES:
            return None
        if h is not None and (h.parked_at or h.next_restart_at) and h.why_down:
            return h.why_down
        if proc is None:
            return None
        if proc.state == ProcessState.STOPPED:
            if self.session.desired_state == DesiredState.STOPPED:
                return "stopped by the operator"
            return "stopped (not started since supervisord started, or by supervisorctl)"
        if h is not None and h.why_down:
            return h.why_down
        if proc.spawnerr:
            return proc.spawnerr
        return f"{proc.state.lower()} with exit status {proc.exitstatus}"

    def to_json(self) -> dict[str, Any]:
        data = self.session.model_dump(mode="json")
        proc = self.process
        data.update(
            process_state=self.process_state,
            pid=self.pid,
            uptime_seconds=self.uptime,
            exit_status=proc.exitstatus if proc and proc.state in EXITED_STATES else None,
            spawn_error=(proc.spawnerr or None) if proc else None,
            why_down=self.why_down,
            restarts=self.restarts,
            webhook_url=redact_url(self.session.webhook_url),
            host_unreachable=self.unreachable,
            ai_key=self.ai_key,
        )
        bot = self.bot.model_dump(mode="json") if self.bot else {}
        for key in ("last_reply_at", "last_error", "last_error_at"):
            data[f"ai_{key}"] = bot.get(key)
        h = self.health.model_dump(mode="json") if self.health else {}
        for key in (
            "last_exit_status",
            "last_exit_at",
            "last_restart_reason",
            "parked_at",
            "next_restart_at",
        ):
            data[key] = h.get(key)
        return {key: data.get(key) for key in JSON_FIELDS}


def age(seconds: float | None) -> str:
    """A compact duration: 45s, 12m, 3h05m, 2d04h."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def since(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    return age((now - moment).total_seconds())
