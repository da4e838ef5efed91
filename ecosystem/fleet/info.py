"""This machine as a host of the fleet: what `zapvisor hosts info` prints, and what the
control side asks each host for (`hosts list`, the TUI's hosts screen)."""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from typing import Any

import psutil

from ecosystem import __version__
from ecosystem.errors import HostNotFound, ZapvisorError
from ecosystem.metrics import HostStats, host_stats
from ecosystem.orchestrator import Orchestrator
from ecosystem.supctl import daemon


@dataclass(frozen=True)
class HostFacts:
    host_id: str
    version: str
    store: str
    """Which store, where (never with the password)."""
    registered: bool
    """Whether the store has this host in its fleet (the same store as the control side
    then: the control side has just read that row)."""
    sessions: int
    max_sessions: int
    base_port: int
    supervisord_pid: int | None
    stats: HostStats
    """CPU, memory and the disk holding the state dir."""

    def to_json(self) -> dict[str, Any]:
        """One flat object: the stats' fields beside the others."""
        data = asdict(self)
        data.update(data.pop("stats"))
        data["mem_percent"] = round(self.stats.mem_percent, 1)
        data["disk_percent"] = round(self.stats.disk_percent, 1)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HostFacts:
        stats = HostStats(**{k: data[k] for k in HostStats.__dataclass_fields__})
        own = {k: data[k] for k in cls.__dataclass_fields__ if k != "stats"}
        return cls(**own, stats=stats)


def host_facts(orch: Orchestrator) -> HostFacts:
    """This host's figures, supervisord brought up when it is down (as any command
    does), so a host the control side looks at is a host that runs."""
    psutil.cpu_percent(interval=None)  # start the CPU sample; the calls below take time
    settings = orch.settings
    orch.ensure_up()
    store = orch.store
    sessions = len(store.list_sessions(settings.host_id))
    registered = False
    with contextlib.suppress(HostNotFound, NotImplementedError):
        registered = store.get_host(settings.host_id).name == settings.host_id
    pid = None
    with contextlib.suppress(ZapvisorError):
        pid = orch.sup.pid() if daemon.is_up(orch.sup) else None
    return HostFacts(
        host_id=settings.host_id,
        version=__version__,
        store=store.describe(),
        registered=registered,
        sessions=sessions,
        max_sessions=settings.max_sessions,
        base_port=settings.base_port,
        supervisord_pid=pid,
        stats=host_stats(settings.home),
    )
