"""This machine as a host of the fleet: what `zapvisor hosts info` prints, and what the
control side asks each host's agent for (`hosts list`); the door's ``host_facts``
gathers them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ecosystem.metrics import HostStats


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
