"""Failover's shapes: a session's lease and its fencing token, host heartbeats, what a
monitor sees of the fleet, and the timings derived from ZAPVISOR_LEASE_SECONDS.

One host holds a running session at a time, by a lease in the store whose times are the
database's clock. The epoch grows at every new holder (and every runner start), so a
write carrying an older epoch is refused: that is the fence. See README "Failover".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from ecosystem.record import Record, record


class AuthKind(StrEnum):
    """Where a session's WhatsApp auth lives."""

    LOCAL = "local"
    """Files in `tokens/<name>/` on its host: it cannot move without a new QR."""
    STORE = "store"
    """In the shared store: any host can connect it with the same phone, no new QR."""


@dataclass(frozen=True)
class Fence:
    """What a runner's writes carry: the lease holder and epoch it started under."""

    holder: str
    epoch: int
    session: str = ""

    @property
    def token(self) -> str:
        """``epoch:holder``, as the store's fence guard reads it."""
        return f"{self.epoch}:{self.holder}"


@record
class Lease(Record):
    session_name: str
    holder: str | None = None
    epoch: int = 0
    expires_at: datetime
    acquired_at: datetime | None = None
    renewed_at: datetime | None = None
    move_to: str | None = None
    move_requested_at: datetime | None = None
    move_requested_by: str | None = None
    offered_to: str | None = None
    now: datetime | None = None
    """The database's clock when this was read."""

    @property
    def fence(self) -> Fence:
        return Fence(self.holder or "", self.epoch, self.session_name)

    def seconds_left(self) -> float | None:
        if self.now is None:
            return None
        return (self.expires_at - self.now).total_seconds()


@record
class HostBeat(Record):
    """A host as the fleet sees it: its last heartbeat and its sessions."""

    host: str
    beat_at: datetime | None = None
    expires_at: datetime | None = None
    started_at: datetime | None = None
    live: bool = False
    accepts_failover: bool = False
    base_port: int | None = None
    max_sessions: int | None = None
    mem_available_mb: int | None = None
    ram_floor_mb: int | None = None
    version: str | None = None
    sessions: int = 0

    @property
    def free_slots(self) -> int | None:
        if self.max_sessions is None:
            return None
        return max(0, self.max_sessions - self.sessions)


@record
class LeasedSession(Record):
    """A session with its lease and its host's liveness (zapvisor_fleet_state)."""

    session_name: str
    host: str
    port: int
    auth: AuthKind = AuthKind.LOCAL
    failover: bool = True
    connector: str = ""
    desired_state: str = "running"
    holder: str | None = None
    epoch: int = 0
    lease_expires_at: datetime | None = None
    offered_to: str | None = None
    move_to: str | None = None
    move_requested_at: datetime | None = None
    move_requested_by: str | None = None
    host_beat_at: datetime | None = None
    host_live: bool = False
    claimable_since: datetime | None = None

    @property
    def can_fail_over(self) -> bool:
        return self.auth == AuthKind.STORE and self.failover


@record
class FleetState(Record):
    now: datetime
    hosts: list[HostBeat] = field(default_factory=list)
    orphans: list[LeasedSession] = field(default_factory=list)
    """Sessions meant to run whose host is silent and whose lease ended."""
    offers: list[LeasedSession] = field(default_factory=list)
    """Sessions handed over by a planned move, waiting for their new host to claim them."""
    moves: list[LeasedSession] = field(default_factory=list)
    """Planned moves their holder has not handed over yet."""

    def host(self, name: str) -> HostBeat | None:
        return next((h for h in self.hosts if h.host == name), None)


@record
class Claimed(Record):
    """A session a host took over (zapvisor_claim_session)."""

    session: str
    kind: str
    """``failover`` or ``move``."""
    from_: str
    to: str
    from_port: int
    to_port: int
    epoch: int
    silent_since: datetime | None = None
    message: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Claimed:
        return cls.model_validate({**data, "from_": data["from"]})


@record
class LeaseInfo(Record):
    """A session's lease and its host's heartbeat, for `show`."""

    now: datetime
    lease: Lease | None = None
    heartbeat: HostBeat | None = None


@record
class SimDevice(Record):
    session_name: str
    device: str
    phone: str
    paired_at: datetime | None = None


@record
class SimLink(Record):
    """One connection of a device to the simulated WhatsApp server."""

    id: int
    device: str
    session_name: str
    host: str
    pid: int | None = None
    epoch: int | None = None
    opened_at: datetime
    seen_at: datetime
    closed_at: datetime | None = None
    close_reason: str | None = None
    replaced_by: int | None = None
    overlap: bool = False


@dataclass(frozen=True)
class LeaseTiming:
    """How a runner keeps its lease, from ZAPVISOR_LEASE_SECONDS.

    It renews every third of the lease, and stops talking to WhatsApp when it could not
    renew for ``ttl - margin`` seconds, counted on its own monotonic clock from the
    moment it sent the last renewal that succeeded (the database started the lease
    later than that, so the runner always lets go before anyone may take over)."""

    ttl: float

    @property
    def renew_every(self) -> float:
        return self.ttl / 3

    @property
    def margin(self) -> float:
        """Kept between the runner's own deadline and the lease's end in the store:
        room for a late timer, a slow disconnect, clocks that tick at slightly
        different rates."""
        return max(1.0, self.ttl / 5)

    @property
    def hold_for(self) -> float:
        return self.ttl - self.margin


SIM_BEAT_SECONDS = 1.0
"""How often a simulated device tells the simulated server it is in use, when other
hosts share that server (a shared store, or ZAPVISOR_SIM_SERVER_URL)."""
ONE_HOST_LEASE_SECONDS = 300.0
"""The lease of a runner on a store only its host uses (SQLite), when longer than
ZAPVISOR_LEASE_SECONDS: nothing fails over from such a store and this host takes its
own lease back at once, so the lease only fences a second runner of the session here;
renewed every third of it, idle runners do not write the store every few seconds."""
SIM_ONE_HOST_BEAT_SECONDS = ONE_HOST_LEASE_SECONDS / 3
"""The same on a server only this host uses (the SQLite store's): no other host can
open the device, so there is no overlap to catch, and a second runner of the session
here is fenced by the lease, whose renewal (as often as this) tells the first one to
stop: beating more often would notice nothing sooner. Each beat is a store write and
wakes the runner twice (~1.4 ms of CPU): 200 paired runners beating every 30 s spent
~0.9 % of a core on it at rest."""
SIM_LIVE_SECONDS = 3.0
"""A link that beat within this is in use: replacing it is two hosts on one device."""
