"""The failover part of the store contract (migration 0009): leases and their fence, host
heartbeats, claims and planned moves, and the sim connector's auth and simulated
WhatsApp server. Mixed into :class:`ecosystem.store.base.Store`.

Not abstract: a store without them (StoreUnsupported) still serves every session
operation; a runner then runs unleased (no other host can take its session either:
claims need these too).
SQLite has the lease, the fence and the sim parts (one host); heartbeats, claims and
moves need a shared store (PostgreSQL or Supabase).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ecosystem.errors import StoreUnsupported
from ecosystem.lease import (
    AuthKind,
    Claimed,
    Fence,
    FleetState,
    Lease,
    LeaseInfo,
    SimDevice,
    SimLink,
)
from ecosystem.session import Session

NO_LEASES = "keeps no leases"
NO_SIM = "has no sim auth nor simulated server"


class LeaseMethods:
    kind: str = "?"

    fence: Fence | None = None
    """Set by a runner once it holds its lease: every write this store object makes to
    the session's row, its webhook outbox or its sim auth carries it, and the store
    refuses the write (LeaseLost) once the lease has another holder or a newer epoch."""

    def set_fence(self, fence: Fence | None) -> None:
        self.fence = fence

    def _unsupported(self, what: str) -> StoreUnsupported:
        return StoreUnsupported(self.kind, f"cannot {what}: failover needs PostgreSQL or Supabase")

    def set_failover(
        self, name: str, *, auth: AuthKind | None, failover: bool | None, actor: str
    ) -> Session:
        """Change where the session's auth lives (refused with CannotMove while a phone
        is linked) and its failover switch; None keeps a value."""
        raise StoreUnsupported(self.kind, "keeps no failover settings")

    # -- leases --------------------------------------------------------------------

    def acquire_lease(self, name: str, host: str, ttl: float) -> Lease:
        """Take the session's lease for ``host`` for ``ttl`` seconds, with a new epoch.
        Raises NotThisHost when the session runs on another host, LeaseHeld when another
        host holds it (or a planned move is under way), SessionNotFound."""
        raise StoreUnsupported(self.kind, NO_LEASES)

    def renew_lease(self, name: str, fence: Fence, ttl: float) -> Lease:
        """Extend the lease by ``ttl`` seconds from now (the database's now). Works after
        it expired too, as long as nobody took it. Raises LeaseLost."""
        raise StoreUnsupported(self.kind, NO_LEASES)

    def release_lease(self, name: str, fence: Fence) -> bool:
        """End the lease now (a runner that stops); False when it was not ours."""
        raise StoreUnsupported(self.kind, NO_LEASES)

    def lease_info(self, name: str) -> LeaseInfo:
        """The session's lease (None when never taken) and its host's heartbeat."""
        raise StoreUnsupported(self.kind, NO_LEASES)

    # -- the fleet -----------------------------------------------------------------

    def host_beat(self, host: str, ttl: float, info: dict[str, Any]) -> datetime:
        """``host`` is alive for ``ttl`` seconds more; ``info`` is what it offers.
        Returns the database's now."""
        raise self._unsupported("keep host heartbeats")

    def fleet_state(self) -> FleetState:
        """Hosts, sessions left behind by silent hosts, handed-over and moving sessions."""
        raise self._unsupported("tell which hosts are alive")

    def claim_session(
        self,
        name: str,
        *,
        host: str,
        ports: range,
        exclude_ports: Iterable[int],
        max_sessions: int,
        ttl: float,
        actor: str,
    ) -> Claimed | None:
        """Take the session over for ``host`` (a failover, or the end of a planned move)
        on the lowest free port of ``ports``, atomically; None when it is not claimable
        (any more): another host won, its host came back. Raises CapacityError."""
        raise self._unsupported("move sessions between hosts")

    def request_move(self, name: str, to: str, actor: str) -> dict[str, Any]:
        """Ask for a planned move to ``to``: {"state": "requested" | "offered", ...}.
        Raises HostUnavailable, CapacityError, CannotMove, SessionNotFound."""
        raise self._unsupported("move sessions between hosts")

    def hand_over(self, name: str, host: str, actor: str) -> dict[str, Any] | None:
        """The holder ``host`` stopped the session for a planned move: offer it to the
        move's target with a new epoch. None when no move is pending for ``host``."""
        raise self._unsupported("move sessions between hosts")

    def cancel_move(self, name: str, actor: str) -> bool:
        """Withdraw a move not handed over yet."""
        raise self._unsupported("move sessions between hosts")

    # -- the webhook secret of a session whose auth lives in the store ----------------

    def webhook_secret(self, name: str) -> str | None:
        """The session's webhook signing secret kept in the store (None: none kept)."""
        raise StoreUnsupported(self.kind, NO_LEASES)

    def save_webhook_secret(self, name: str, secret: str) -> None:
        """Keep it in the store, so it moves with the session. SessionNotFound."""
        raise StoreUnsupported(self.kind, NO_LEASES)

    # -- the sim connector ---------------------------------------------------------

    def sim_auth(self, name: str) -> SimDevice | None:
        raise StoreUnsupported(self.kind, NO_SIM)

    def save_sim_auth(self, name: str, device: str, phone: str) -> None:
        raise StoreUnsupported(self.kind, NO_SIM)

    def delete_sim_auth(self, name: str) -> bool:
        raise StoreUnsupported(self.kind, NO_SIM)

    def sim_open(
        self, device: str, session: str, host: str, pid: int, epoch: int | None, live: float
    ) -> tuple[int, list[dict[str, Any]]]:
        """A simulated device connects: (its link id, the links it replaced, each
        ``{"id", "host", "pid", "live"}``)."""
        raise StoreUnsupported(self.kind, NO_SIM)

    def sim_beat(self, link: int) -> tuple[bool, str | None, str | None]:
        """(still open, why closed, by which host)."""
        raise StoreUnsupported(self.kind, NO_SIM)

    def sim_close(self, link: int, reason: str) -> None:
        raise StoreUnsupported(self.kind, NO_SIM)

    def sim_links(self, name: str | None = None, limit: int = 1000) -> list[SimLink]:
        """Links of a session (of every session when None), newest first."""
        raise StoreUnsupported(self.kind, NO_SIM)
