"""The failover pass's alerts (failover.py), raised by one live host for the fleet (the
first by name): a session nobody takes, whether a silent host left it behind or a
planned move handed it to a host that cannot take it, and a silent host whose sessions
cannot fail over (local auth, failover off)."""

from __future__ import annotations

from ecosystem.health.model import AlertKind, NewAlert, Severity
from ecosystem.lease import FleetState, HostBeat, LeasedSession

SESSION_MB = 100
"""What one more session is counted at against the RAM floor (a runner with neonize
uses about 60-80 MB)."""


def fleet_alerts(state: FleetState, host: str, grace: float) -> list[NewAlert]:
    """What ``host`` raises for the fleet (nothing unless it is the first live host);
    a session is "unplaced" once it could have been taken for ``grace`` seconds."""
    live = sorted(h.host for h in state.hosts if h.live)
    if not live or live[0] != host:
        return []  # one live host speaks for the fleet
    out: list[NewAlert] = []
    stranded: dict[str, list[LeasedSession]] = {}
    for o in state.orphans:
        if not o.can_fail_over:
            stranded.setdefault(o.host, []).append(o)
            continue
        waited = (state.now - o.claimable_since).total_seconds() if o.claimable_since else 0
        if waited < grace:
            continue
        why = "; ".join(_why_not(h) for h in state.hosts if h.live and h.host != o.host)
        out.append(
            _unplaced(
                host,
                o,
                f"failover of {o.session_name} from {o.host} cannot be placed: "
                f"{why or 'no other host is alive'}",
            )
        )
    out += _moves_unplaced(state, host, grace)
    for silent, left in sorted(stranded.items()):
        names = ", ".join(o.session_name for o in left[:10])
        more = f" and {len(left) - 10} more" if len(left) > 10 else ""
        since = left[0].host_beat_at
        when = since.strftime("%Y-%m-%d %H:%M:%S UTC") if since else "its start"
        out.append(
            NewAlert(
                host=host,
                key=f"host_silent:{silent}",
                kind=AlertKind.HOST_SILENT,
                severity=Severity.CRITICAL,
                value=float(len(left)),
                message=(
                    f"host {silent} is silent since {when}: {len(left)} session(s) cannot "
                    f"fail over (auth local or failover off): {names}{more}"
                ),
            )
        )
    return out


def _moves_unplaced(state: FleetState, host: str, grace: float) -> list[NewAlert]:
    """Sessions a planned move handed over (stopped on their host) that the target, alive,
    has not taken: it filled up after the move was asked for, or its claims fail. Nothing
    runs them meanwhile; the target takes them once it can."""
    out = []
    for o in state.offers:
        # the hand-over ended the lease (expires_at = then): offered since
        since = o.lease_expires_at
        if since is None or (state.now - since).total_seconds() < grace:
            continue
        target = state.host(o.offered_to or "")
        if target is None or target.free_slots != 0:
            why = f"{o.offered_to} has room but did not take it (see its monitor's log)"
        else:
            why = f"{o.offered_to} is full ({target.sessions} of {target.max_sessions})"
        out.append(
            _unplaced(
                host,
                o,
                f"move of {o.session_name} from {o.host} to {o.offered_to} cannot be placed: "
                f"{why}; nothing runs it until {o.offered_to} takes it",
            )
        )
    return out


def _unplaced(host: str, o: LeasedSession, message: str) -> NewAlert:
    return NewAlert(
        host=host,
        key=f"failover_unplaced:{o.session_name}",
        kind=AlertKind.FAILOVER_UNPLACED,
        severity=Severity.CRITICAL,
        session_name=o.session_name,
        message=message,
    )


def _why_not(h: HostBeat) -> str:
    if not h.accepts_failover:
        return f"{h.host} does not accept failover"
    if h.free_slots == 0:
        return f"{h.host} is full ({h.sessions} of {h.max_sessions})"
    if (
        h.mem_available_mb is not None
        and h.ram_floor_mb is not None
        and h.mem_available_mb - SESSION_MB < h.ram_floor_mb
    ):
        return f"{h.host} has {h.mem_available_mb} MB available and keeps {h.ram_floor_mb} MB"
    return f"{h.host} has room but did not take it (see its monitor's log)"
