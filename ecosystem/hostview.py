"""A host as the operator sees it: supervisord's process table, its runners' figures
and the machine's load, as one report taken on the host (one round trip per refresh)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from ecosystem.metrics import HostStats, ProcStats
from ecosystem.supctl.rpc import ProcessInfo


@dataclass(frozen=True)
class HostReport:
    """What one host says of itself at one moment."""

    host_id: str
    version: str
    taken_at: datetime
    supervisord_up: bool
    max_sessions: int
    base_port: int
    processes: Mapping[str, ProcessInfo] = field(default_factory=dict)
    """supervisord's getAllProcessInfo, by program name (empty while it is down)."""
    procs: Mapping[int, ProcStats] = field(default_factory=dict)
    """CPU and memory of its runners, by pid."""
    stats: HostStats | None = None
    """The machine's CPU, load, memory and disk."""


@dataclass(frozen=True)
class HostState:
    """What a live view knows of one host: its newest report, and whether it answers."""

    host_id: str
    report: HostReport | None
    """The newest report it answered with (kept while it is silent)."""
    local: bool = False
    reachable: bool = True
    since: datetime | None = None
    """When it stopped answering (None while it answers)."""
    error: str | None = None
    latency_ms: float | None = None
    sessions: int = 0
    """Sessions the store places on it."""

    @property
    def note(self) -> str | None:
        """ "host unreachable since HH:MM:SS" (local time) while it is silent."""
        if self.reachable:
            return None
        when = self.since.astimezone().strftime("%H:%M:%S") if self.since else "?"
        return f"host unreachable since {when}"
