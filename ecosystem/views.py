"""A session as the operator sees it: the store's row joined with supervisord's facts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ecosystem.conversations import BotActivity
from ecosystem.health.model import SessionHealth
from ecosystem.lease import LeaseInfo
from ecosystem.names import program_name
from ecosystem.ports import port_is_free, who_hold
from ecosystem.redact import redact_url
from ecosystem.session import Session
from ecosystem.states import (
    EXITED_STATES,
    PROCESS_UP,
    SIGNALLABLE_STATES,
    DesiredState,
    ProcessState,
)
from ecosystem.supctl.rpc import ProcessInfo

JSON_FIELDS = (
    "name",
    "description",
    "host",
    "port",
    "connector",
    "auth",
    "failover",
    "can_fail_over",
    "device_jid",
    "lease",
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
    "port_conflict",
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
    port_holder: str | None = None
    """Who holds the session's port while its runner is down ("held by nginx (pid
    42)"): it could not start. Set by :func:`session_views`."""
    lease: LeaseInfo | None = None
    """Its lease and its host's heartbeat (`show` only; None in lists)."""

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
        if self.process.state == ProcessState.RUNNING or self._reported_since_start:
            return str(self.session.status)
        return self.process.state

    @property
    def _reported_since_start(self) -> bool:
        """STARTING for supervisord (inside its `startsecs`) but the runner already
        reported: `create` said "runner up", so `list` must not say STARTING."""
        proc = self.process
        return (
            proc is not None
            and proc.state == ProcessState.STARTING
            and bool(proc.start)
            and self.session.updated_at.timestamp() >= proc.start
        )

    @property
    def status_label(self) -> str:
        """The STATUS column of `list` and of the app: PARKED while a crash loop holds
        it stopped, PORT TAKEN while its runner is down and another process holds its
        port (it could not start), else :attr:`display_status`."""
        if self.process_state not in PROCESS_UP:
            if self.parked:
                return "PARKED"
            if self.port_holder:
                return "PORT TAKEN"
        return self.display_status

    @property
    def restarts(self) -> int:
        return self.health.restarts if self.health else 0

    @property
    def parked(self) -> bool:
        return bool(self.health and self.health.parked_at)

    @property
    def why_down(self) -> str | None:
        """Why the runner is not running, in one line; None while it runs."""
        why = self._why_down()
        if why is not None and self.port_holder:
            why += f"; port {self.session.port} is {self.port_holder}: it cannot start"
        return why

    def _why_down(self) -> str | None:
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
        status = self.exit_status
        if proc.spawnerr and status is None:
            return proc.spawnerr
        if status is None:
            return f"{proc.state.lower()} (exit status not known)"
        return f"{proc.state.lower()} with exit status {status}"

    @property
    def exit_status(self) -> int | None:
        """The runner's last exit status while it is down (-1: a signal). supervisord
        reports 0 for an exit within `startsecs` (FATAL): then the health monitor's
        record of that exit (read from supervisord's log) is used, else None."""
        proc, h = self.process, self.health
        if proc is None or proc.state not in EXITED_STATES:
            return None
        if proc.state == ProcessState.EXITED:
            return proc.exitstatus
        if h is None or h.last_exit_at is None or h.last_exit_at.timestamp() < proc.stop - 2:
            return None  # no record of this exit (the monitor is off, or not there yet)
        return h.last_exit_status

    def to_json(self) -> dict[str, Any]:
        """The session in `list --json` / `show --json`: :data:`JSON_FIELDS`, in order.
        Built as one dict display (a listing makes one a session): the session's own
        fields as its dump has them, the rest from the process, the health record and
        the bot."""
        row = self.session.model_dump(mode="json")
        proc, h, bot = self.process, self.health, self.bot
        health = h.model_dump(mode="json") if h else {}
        ai = bot.model_dump(mode="json") if bot else {}
        get = row.get
        return {
            "name": get("name"),
            "description": get("description"),
            "host": get("host"),
            "port": get("port"),
            "connector": get("connector"),
            "auth": get("auth"),
            "failover": get("failover"),
            "can_fail_over": self.session.can_fail_over,
            "device_jid": get("device_jid"),
            "lease": lease_json(self.lease),
            "desired_state": get("desired_state"),
            "status": get("status"),
            "process_state": self.process_state,
            "pid": self.pid,
            "uptime_seconds": self.uptime,
            "phone": get("phone"),
            "qr_payload": get("qr_payload"),
            "qr_expires_at": get("qr_expires_at"),
            "webhook_url": redact_url(self.session.webhook_url),
            "webhook_events": get("webhook_events"),
            "ai_config": get("ai_config"),
            "timing_config": get("timing_config"),
            "messages_sent": get("messages_sent"),
            "messages_received": get("messages_received"),
            "last_error": get("last_error"),
            "exit_status": self.exit_status,
            "spawn_error": (proc.spawnerr or None) if proc else None,
            "restarts": self.restarts,
            "last_exit_status": health.get("last_exit_status"),
            "last_exit_at": health.get("last_exit_at"),
            "last_restart_reason": health.get("last_restart_reason"),
            "why_down": self.why_down,
            "port_conflict": self.port_holder,
            "parked_at": health.get("parked_at"),
            "next_restart_at": health.get("next_restart_at"),
            "created_at": get("created_at"),
            "updated_at": get("updated_at"),
            "connected_at": get("connected_at"),
            "last_activity_at": get("last_activity_at"),
            "host_unreachable": self.unreachable,
            "ai_key": self.ai_key,
            "ai_last_reply_at": ai.get("last_reply_at"),
            "ai_last_error": ai.get("last_error"),
            "ai_last_error_at": ai.get("last_error_at"),
        }


def lease_json(info: LeaseInfo | None) -> dict[str, Any] | None:
    """The `lease` object of `show --json`: holder, epoch, expiry and the holder's
    heartbeat (null when the session was never run under a lease)."""
    if info is None or info.lease is None:
        return None
    lease, beat = info.lease, info.heartbeat
    return {
        "holder": lease.holder,
        "epoch": lease.epoch,
        "expires_at": lease.expires_at.isoformat(),
        "expired": lease.expires_at <= info.now,
        "move_to": lease.move_to or lease.offered_to,
        "host_seen_at": beat.beat_at.isoformat() if beat and beat.beat_at else None,
        "host_live": beat.live if beat else None,
    }


def session_views(
    sessions: Iterable[Session],
    infos: Mapping[str, ProcessInfo],
    health: Mapping[str, SessionHealth],
    holders: Mapping[int, str] | None = None,
) -> list[SessionView]:
    """Each session joined with its process and health record, and with who holds its
    port while its runner is down (``holders``, from :func:`port_holders` run on the
    session's host for the :func:`down_ports`)."""
    views = []
    for s in sessions:
        info = infos.get(program_name(s.name))
        down = info is None or info.state not in PROCESS_UP
        holder = (holders or {}).get(s.port) if down else None
        views.append(SessionView(s, info, health.get(s.name), port_holder=holder))
    return views


def down_ports(sessions: Iterable[Session], infos: Mapping[str, ProcessInfo]) -> list[int]:
    """The ports of the sessions whose runner is not up (nothing of ours holds them)."""
    return [
        s.port
        for s in sessions
        if (info := infos.get(program_name(s.name))) is None or info.state not in PROCESS_UP
    ]


def port_holders(ports: Iterable[int], bind: str) -> dict[int, str]:
    """Who holds each of ``ports`` that a runner could not listen on now ("held by nginx
    (pid 42)"): one bind attempt each, cheap; the holders of the taken ones are looked
    up in one read of the socket table."""
    taken = [port for port in ports if not port_is_free(port, bind)]
    return {
        port: (
            f"held by {found.process or 'a process'} (pid {found.pid})"
            if found.pid is not None
            else "in use by another process"
        )
        for port, found in who_hold(taken).items()
    }


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
