"""Leases, heartbeats, claims, moves and the sim server of the postgres and supabase
stores (migrations/postgres/0009_failover.sql): each method is one call of a SQL
function, the same for both stores, and every time in them is the database's clock.

The fence itself travels outside these calls: the postgres store sets it on each write
transaction, the supabase store sends it as a header (see their ``set_fence``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ecosystem.errors import SessionNotFound
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
from ecosystem.store.pgcommon import session_from_row
from ecosystem.store.pgfunctions import FunctionCaller, in_utc, parse_time


def _lease(data: Any) -> Lease:
    return in_utc(Lease.model_validate(data))


class PgLease(FunctionCaller):
    def set_failover(
        self, name: str, *, auth: AuthKind | None, failover: bool | None, actor: str
    ) -> Session:
        rows = self.call_function(
            "zapvisor_set_failover",
            {
                "p_name": name,
                "p_auth": None if auth is None else str(auth),
                "p_failover": failover,
                "p_actor": actor,
            },
            returns="rows",
            write=True,
            name=name,
        )
        return session_from_row(rows[0])

    # -- leases --------------------------------------------------------------------

    def acquire_lease(self, name: str, host: str, ttl: float) -> Lease:
        data = self.call_function(
            "zapvisor_lease_acquire",
            {"p_name": name, "p_host": host, "p_ttl": ttl},
            returns="value",
            write=True,
            name=name,
        )
        return _lease(data)

    def renew_lease(self, name: str, fence: Fence, ttl: float) -> Lease:
        data = self.call_function(
            "zapvisor_lease_renew",
            {"p_name": name, "p_host": fence.holder, "p_epoch": fence.epoch, "p_ttl": ttl},
            returns="value",
            write=True,
            name=name,
        )
        return _lease(data)

    def release_lease(self, name: str, fence: Fence) -> bool:
        done = self.call_function(
            "zapvisor_lease_release",
            {"p_name": name, "p_host": fence.holder, "p_epoch": fence.epoch},
            returns="value",
            write=True,
            name=name,
        )
        return bool(done)

    def lease_info(self, name: str) -> LeaseInfo:
        data = self.call_function(
            "zapvisor_lease_info", {"p_name": name}, returns="value", write=False, name=name
        )
        if not data:
            raise SessionNotFound(f"no session named {name!r} (see `zapvisor list`)")
        info = LeaseInfo.model_validate(data)
        if info.lease is not None:
            info.lease.now = info.now
            in_utc(info.lease)
        if info.heartbeat is not None:
            in_utc(info.heartbeat)
        return in_utc(info)

    # -- the fleet -----------------------------------------------------------------

    def host_beat(self, host: str, ttl: float, info: dict[str, Any]) -> datetime:
        value = self.call_function(
            "zapvisor_host_beat",
            {"p_host": host, "p_ttl": ttl, "p_info": info},
            returns="value",
            write=True,
        )
        now = parse_time(value)
        assert now is not None
        return now

    def fleet_state(self) -> FleetState:
        data = self.call_function("zapvisor_fleet_state", {}, returns="value", write=False)
        state = in_utc(FleetState.model_validate(data))
        for group in (state.hosts, state.orphans, state.offers, state.moves):
            for row in group:
                in_utc(row)
        return state

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
        data = self.call_function(
            "zapvisor_claim_session",
            {
                "p_name": name,
                "p_host": host,
                "p_port_first": ports.start,
                "p_port_last": ports.stop - 1,
                "p_exclude": sorted(set(exclude_ports)),
                "p_max_sessions": max_sessions,
                "p_ttl": ttl,
                "p_actor": actor,
            },
            returns="value",
            write=True,
            name=name,
            ports=ports,
            host=host,
            max_sessions=max_sessions,
        )
        return in_utc(Claimed.from_json(data)) if data else None

    def request_move(self, name: str, to: str, actor: str) -> dict[str, Any]:
        data = self.call_function(
            "zapvisor_request_move",
            {"p_name": name, "p_to": to, "p_actor": actor},
            returns="value",
            write=True,
            name=name,
            host=to,
        )
        return dict(data)

    def hand_over(self, name: str, host: str, actor: str) -> dict[str, Any] | None:
        data = self.call_function(
            "zapvisor_hand_over",
            {"p_name": name, "p_host": host, "p_actor": actor},
            returns="value",
            write=True,
            name=name,
        )
        return dict(data) if data else None

    def cancel_move(self, name: str, actor: str) -> bool:
        return bool(
            self.call_function(
                "zapvisor_cancel_move",
                {"p_name": name, "p_actor": actor},
                returns="value",
                write=True,
                name=name,
            )
        )

    # -- the webhook secret of a session whose auth lives in the store ----------------

    def webhook_secret(self, name: str) -> str | None:
        value = self.call_function(
            "zapvisor_webhook_secret", {"p_name": name}, returns="value", write=False
        )
        return None if value is None else str(value)

    def save_webhook_secret(self, name: str, secret: str) -> None:
        self.call_function(
            "zapvisor_save_webhook_secret",
            {"p_name": name, "p_secret": secret},
            returns="nothing",
            write=True,
            name=name,
        )

    # -- the sim connector ---------------------------------------------------------

    def sim_auth(self, name: str) -> SimDevice | None:
        rows = self.call_function(
            "zapvisor_sim_auth", {"p_name": name}, returns="rows", write=False
        )
        return in_utc(SimDevice.model_validate(rows[0])) if rows else None

    def save_sim_auth(self, name: str, device: str, phone: str) -> None:
        self.call_function(
            "zapvisor_sim_auth_save",
            {"p_name": name, "p_device": device, "p_phone": phone},
            returns="nothing",
            write=True,
            name=name,
        )

    def delete_sim_auth(self, name: str) -> bool:
        return bool(
            self.call_function(
                "zapvisor_sim_auth_delete", {"p_name": name}, returns="value", write=True
            )
        )

    def sim_open(
        self, device: str, session: str, host: str, pid: int, epoch: int | None, live: float
    ) -> tuple[int, list[dict[str, Any]]]:
        data = self.call_function(
            "zapvisor_sim_open",
            {
                "p_device": device,
                "p_session": session,
                "p_host": host,
                "p_pid": pid,
                "p_epoch": epoch,
                "p_live": live,
            },
            returns="value",
            write=True,
        )
        return int(data["id"]), list(data.get("replaced") or [])

    def sim_beat(self, link: int) -> tuple[bool, str | None, str | None]:
        data = self.call_function("zapvisor_sim_beat", {"p_id": link}, returns="value", write=True)
        return bool(data["open"]), data.get("reason"), data.get("by")

    def sim_close(self, link: int, reason: str) -> None:
        self.call_function(
            "zapvisor_sim_close", {"p_id": link, "p_reason": reason}, returns="nothing", write=True
        )

    def sim_links(self, name: str | None = None, limit: int = 1000) -> list[SimLink]:
        rows = self.call_function(
            "zapvisor_sim_links", {"p_name": name, "p_limit": limit}, returns="rows", write=False
        )
        return [in_utc(SimLink.model_validate(r)) for r in rows]
