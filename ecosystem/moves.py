"""Failover and planned moves as an operator meets them: where a new session's auth
lives, what `show` says about it, `zapvisor move NAME --to HOST`, and what moved, when
and why (from the audit trail).

A planned move is decided in the store, never by a host's supervisord: the move is
asked for; the holder stops the runner and hands the session over; the target claims it
on a port of its own and starts it. The door (failover_actions.py) asks both hosts to do
their part at once, over the fleet's links; a host it cannot reach does its part at its
monitor's next check. So it works from wherever the operator is, and a host that does
not answer cannot be half-moved.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ecosystem.errors import (
    CannotMove,
    CapacityError,
    HostUnavailable,
    InvalidValue,
    RunnerError,
)
from ecosystem.lease import AuthKind, FleetState, HostBeat
from ecosystem.session import Event, Session
from ecosystem.settings import Settings
from ecosystem.states import DesiredState, Status
from ecosystem.store import SHARED_STORES, Store

STORE_AUTH_CONNECTORS: dict[str, tuple[str, ...]] = {
    "sim": SHARED_STORES,
    "neonize": ("postgres",),
}
"""Connectors that can keep their auth in the store, and on which stores: neonize keeps
it in whatsmeow's own tables, which need a direct PostgreSQL connection (the fleet's
ZAPVISOR_DATABASE_URL), not Supabase's REST API."""
MOVE_ACTIONS = ("failover", "move", "moved_away", "lease_lost", "hand_over")
SESSION_MB = 100


def choose_auth(store_kind: str, connector: str, asked: AuthKind | None) -> AuthKind:
    """Where a new session's auth lives: in the store when it is shared and the
    connector can keep it there (so the session can fail over), else local files."""
    shared = store_kind in SHARED_STORES
    able = store_kind in STORE_AUTH_CONNECTORS.get(connector, ())
    if asked is None:
        return AuthKind.STORE if shared and able else AuthKind.LOCAL
    if asked == AuthKind.STORE and not shared:
        raise InvalidValue(
            "--auth store needs a store the hosts share (PostgreSQL or Supabase); with "
            f"the {store_kind} store the auth stays in this host's files"
        )
    if asked == AuthKind.STORE and not able:
        if connector in STORE_AUTH_CONNECTORS:
            kinds = " or ".join(STORE_AUTH_CONNECTORS[connector])
            raise InvalidValue(
                f"the {connector} connector keeps its auth in the store only with a "
                f"{kinds} store (this one is {store_kind}): set ZAPVISOR_DATABASE_URL"
            )
        raise InvalidValue(f"the {connector} connector keeps its auth in local files only")
    return asked


def failover_note(session: Session) -> str:
    """One line on whether the session can fail over, and why not."""
    if session.auth == AuthKind.LOCAL:
        return (
            f"cannot fail over: its WhatsApp auth is in tokens/{session.name}/ on "
            f"{session.host} (a move needs a new QR)"
        )
    if not session.failover:
        return f"failover off (`zapvisor failover {session.name} on`)"
    return f"fails over to another host if {session.host} goes silent"


# -- planned moves ------------------------------------------------------------------------


@dataclass(frozen=True)
class MoveResult:
    name: str
    from_host: str
    to_host: str
    port: int
    status: str
    phone: str | None
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "from": self.from_host,
            "to": self.to_host,
            "port": self.port,
            "status": self.status,
            "phone": self.phone,
            "seconds": round(self.seconds, 1),
        }


def _target(state: FleetState, to: str) -> HostBeat:
    host = state.host(to)
    if host is None or host.beat_at is None:
        known = ", ".join(h.host for h in state.hosts if h.live) or "none"
        raise HostUnavailable(f"no host {to!r} has ever sent a heartbeat (alive now: {known})")
    _check_target(host)
    return host


def _check_target(host: HostBeat) -> None:
    to = host.host
    if not host.live:
        raise HostUnavailable(
            f"host {to} is not answering: its last heartbeat was at "
            f"{host.beat_at:%Y-%m-%d %H:%M:%S} UTC"
        )
    if host.free_slots == 0:
        raise CapacityError(
            f"host {to} is full: {host.sessions} of MAX_SESSIONS {host.max_sessions}"
        )
    if (
        host.mem_available_mb is not None
        and host.ram_floor_mb is not None
        and host.mem_available_mb - SESSION_MB < host.ram_floor_mb
    ):
        raise CapacityError(
            f"host {to} has {host.mem_available_mb} MB available and keeps "
            f"{host.ram_floor_mb} MB (ZAPVISOR_FAILOVER_RAM_FLOOR_MB)"
        )


def refusal(host: HostBeat) -> str | None:
    """Why ``host`` cannot take a session now, or None when it can."""
    try:
        _check_target(host)
    except (HostUnavailable, CapacityError) as exc:
        return str(exc)
    return None


def targets(store: Store, name: str) -> list[tuple[HostBeat, str | None]]:
    """The other hosts that ever sent a heartbeat, each with why it cannot take
    ``name`` now (None: it can), live ones first."""
    session = store.get_session(name)
    hosts = [h for h in store.fleet_state().hosts if h.host != session.host and h.beat_at]
    hosts.sort(key=lambda h: (not h.live, h.host))
    return [(h, refusal(h)) for h in hosts]


def ask(store: Store, name: str, to: str, *, actor: str) -> tuple[Session, str]:
    """Ask for a planned move of ``name`` to host ``to``: (the session as it was, "requested"
    when its holder must hand it over first, or "offered" when nothing runs it). Refused,
    with nothing changed, when ``to`` is unknown, silent, full or short of memory, or
    the session's auth is local."""
    session = store.get_session(name)
    if session.host == to:
        raise CannotMove(f"session {name} already runs on {to}")
    if session.auth != AuthKind.STORE:
        raise CannotMove(
            f"session {name} keeps its WhatsApp auth in files on {session.host} (auth local): "
            "it cannot move without a new QR"
        )
    _target(store.fleet_state(), to)
    asked = store.request_move(name, to, actor)
    return session, str(asked["state"])


def wait_moved(
    store: Store,
    session: Session,
    to: str,
    *,
    actor: str,
    began: float,
    timeout: float,
    progress: Callable[[str], None],
    poll: float = 0.2,
) -> MoveResult:
    """Wait until ``to`` took the session over and runs it (connected, or waiting for a
    scan when it never was paired; just moved when it is stopped). A move its holder
    did not hand over in time is withdrawn (nothing moved)."""
    name, source = session.name, session.host
    deadline = began + timeout
    while time.monotonic() < deadline:
        now = store.get_session(name)
        if now.host == to:
            break
        time.sleep(poll)
    else:
        info = store.lease_info(name)
        lease = info.lease
        if lease is not None and lease.move_to == to and store.cancel_move(name, actor):
            raise HostUnavailable(
                f"{source} did not hand {name} over within {timeout:g} s (is its health "
                f"monitor running?): nothing moved, {name} stays on {source}"
            )
        raise HostUnavailable(
            f"{to} has not taken {name} over within {timeout:g} s: it is offered to {to}, "
            f"whose monitor takes it at its next check (if {to} goes silent, another host "
            "takes it over)"
        )
    progress(f"{to} took {name} over on port {now.port}")
    if now.desired_state == DesiredState.STOPPED:
        return _result(now, source, began)
    # The claim that gave it to `to` set its status to initializing in the same write:
    # whatever it says since is the new runner's, which may have said it before this
    # loop first saw the new host (a runner connects within ~50 ms of its claim).
    running = (Status.CONNECTED, Status.WAITING_SCAN)
    while now.status not in running and time.monotonic() < deadline:
        time.sleep(poll)
        now = store.get_session(name)
    if now.status in running:
        return _result(now, source, began)
    raise RunnerError(
        f"{name} moved to {to} (port {now.port}) but its runner has not reported within "
        f"{timeout:g} s (status {now.status}): see `zapvisor logs {name}` on {to}"
    )


def _result(session: Session, source: str, began: float) -> MoveResult:
    return MoveResult(
        name=session.name,
        from_host=source,
        to_host=session.host,
        port=session.port,
        status=str(session.status),
        phone=session.phone,
        seconds=time.monotonic() - began,
    )


def move_timeout(settings: Settings) -> float:
    """Long enough for the holder's next check, a runner's stop, the target's next check
    and a runner's start."""
    return 2 * settings.health_interval + 2 * settings.start_timeout + 10


# -- what moved -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Moved:
    at: datetime
    session: str
    kind: str
    """``failover``, ``move`` (arrived), ``moved_away`` (a program removed from a host
    that came back), ``lease_lost`` (a runner that found its lease taken and stopped)."""
    from_host: str | None
    to_host: str | None
    why: str

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "session": self.session,
            "kind": self.kind,
            "from": self.from_host,
            "to": self.to_host,
            "why": self.why,
        }


def _moved(e: Event) -> Moved:
    d = e.detail
    if e.action in ("failover", "move"):
        ends, why = (d.get("from"), d.get("to")), str(d.get("message") or e.action)
    elif e.action == "moved_away":
        ends = (d.get("host"), d.get("now_on"))
        why = f"its program on {d.get('host')} was removed: it runs on {d.get('now_on')}"
    elif e.action == "hand_over":
        ends, why = (d.get("from"), d.get("to")), f"handed over for a planned move (by {e.actor})"
    else:
        ends, why = (d.get("host"), None), str(d.get("reason") or "lease lost")
    return Moved(e.ts, e.session_name or "", e.action, ends[0], ends[1], why)


def history(store: Store, host: str | None = None, limit: int = 50) -> list[Moved]:
    """What moved, newest first: failovers and moves (from or to ``host`` when given),
    programs removed from a host that came back, runners that found their lease lost."""
    found = []
    for e in store.list_events(None, limit=max(limit * 40, 2000)):
        if e.action not in MOVE_ACTIONS:
            continue
        m = _moved(e)
        if host is None or host in (m.from_host, m.to_host):
            found.append(m)
        if len(found) >= limit:
            break
    return found
