"""The monitor's part in failover, on every host (ecosystem/lease.py has the shapes).

Once per check, with one look at the fleet (``Store.fleet_state``):

- *hand over*: a planned move of one of this host's sessions is pending: stop its
  runner (which ends its lease) and offer the session to the target;
- *claim*: take over the sessions a silent host left behind (lease ended, failover on,
  auth in the store) and the ones offered to this host, as far as MAX_SESSIONS and the
  RAM floor allow, a few per check (no storm when a big host dies). Every session has
  its own order of preferred hosts (rendezvous hashing), so the survivors share the
  work rather than race for the same sessions; a host further down the order waits a
  check per place before it tries. The store decides each claim atomically, with a
  port of this host's range;
- *programs*: add the claimed sessions' programs to supervisord and start them; remove
  those of sessions that are no longer this host's (they moved away while it was
  frozen or cut off): their runners found the lease lost and stopped;
- *alerts* (failover_alerts.py): a session nobody can place (after a failover or a
  planned move), and a silent host whose sessions cannot fail over (local auth,
  failover off). One live host (the first by name) raises them.

The heartbeat runs in a thread of its own (``Heartbeat``), so a slow check never makes
this host look silent.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ecosystem import __version__
from ecosystem.errors import CapacityError, SchemaMissing, StoreUnsupported, ZapvisorError
from ecosystem.health.failover_alerts import SESSION_MB, fleet_alerts
from ecosystem.health.model import MONITOR_ACTOR, NewAlert
from ecosystem.lease import Claimed, FleetState, LeasedSession
from ecosystem.names import program_name, session_from_program
from ecosystem.paths import StatePaths
from ecosystem.ports import busy_ports
from ecosystem.settings import Settings
from ecosystem.states import DesiredState
from ecosystem.store import Store
from ecosystem.supctl.rpc import Supervisor

log = logging.getLogger("health")

UNPLACED_AFTER_CHECKS = 3
"""Checks a claimable session may wait before "cannot be placed" is raised."""
APPLY_LOCK_SECONDS = 5.0


def available_mb() -> int:
    import psutil

    return int(psutil.virtual_memory().available // 2**20)


def rank(session: str, host: str) -> str:
    """A session's preference for a host: lower ranks first (rendezvous hashing)."""
    return hashlib.sha256(f"{session}\0{host}".encode()).hexdigest()


def fleet_supported(store: Store) -> bool:
    return store.kind in ("postgres", "supabase")


def host_info(settings: Settings, started_at: datetime) -> dict[str, Any]:
    return {
        "accepts_failover": settings.accept_failover,
        "base_port": settings.base_port,
        "max_sessions": settings.max_sessions,
        "mem_available_mb": available_mb(),
        "ram_floor_mb": settings.failover_ram_floor_mb,
        "version": __version__,
        "started_at": started_at.isoformat(),
    }


class Heartbeat(threading.Thread):
    """This host's proof of life in the store, every third of the lease at most."""

    def __init__(
        self, store: Store, settings: Callable[[], Settings], started_at: datetime
    ) -> None:
        super().__init__(name="heartbeat", daemon=True)
        self.store = store
        self.settings = settings
        self.started_at = started_at
        self.stopped = threading.Event()
        self.beats = 0
        self._failing = ""

    def interval(self) -> float:
        s = self.settings()
        return min(s.health_interval, s.lease_seconds / 3)

    def beat(self) -> None:
        s = self.settings()
        try:
            self.store.host_beat(s.host_id, s.lease_seconds, host_info(s, self.started_at))
        except ZapvisorError as exc:
            if str(exc) != self._failing:
                log.warning("heartbeat not written: %s", exc)
                self._failing = str(exc)
            return
        if self._failing:
            log.warning("heartbeat written again")
        self._failing = ""
        self.beats += 1

    def run(self) -> None:
        while not self.stopped.is_set():
            self.beat()
            self.stopped.wait(self.interval())


@dataclass
class FailoverPass:
    """What one check did (for monitor.json, the log and the tests)."""

    claimed: list[Claimed] = field(default_factory=list)
    handed_over: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    alerts: list[NewAlert] = field(default_factory=list)


class Failover:
    def __init__(self, settings: Settings, store: Store, sup: Supervisor) -> None:
        self.store = store
        self.sup = sup
        self.reconfigure(settings)
        self.last = FailoverPass()
        self._failing = ""

    def reconfigure(self, settings: Settings) -> None:
        self.settings = settings
        self.paths = StatePaths(settings.home)
        self.host = settings.host_id
        self.actor = f"{MONITOR_ACTOR}@{settings.host_id}"

    @property
    def ports(self) -> range:
        return range(self.settings.base_port, self.settings.last_port + 1)

    # -- the pass --------------------------------------------------------------------

    def check(self, now: datetime, programs: set[str]) -> FailoverPass:
        """One pass; ``programs``: the session programs supervisord has now. Raises
        StoreError when the store stops answering midway (the next check goes on)."""
        done = FailoverPass()
        try:
            state = self.store.fleet_state()
        except (StoreUnsupported, SchemaMissing) as exc:
            if str(exc) != self._failing:
                log.warning("failover is off: %s", exc)
                self._failing = str(exc)
            self.last = done
            return done
        self._failing = ""
        self._hand_over(state, done)
        self._claim(state, now, done)
        self._programs(programs, done)
        grace = UNPLACED_AFTER_CHECKS * self.settings.health_interval
        done.alerts = fleet_alerts(state, self.host, grace)
        self.last = done
        return done

    def _hand_over(self, state: FleetState, done: FailoverPass) -> None:
        for move in state.moves:
            if move.host != self.host:
                continue
            try:
                handed = self.hand_over(move.session_name, self.actor)
            except ZapvisorError as exc:
                log.warning("cannot stop %s for its move: %s", move.session_name, exc)
                continue
            if handed is not None:
                log.warning(
                    "%s handed over to %s (planned move)",
                    move.session_name,
                    handed,
                    extra={"session": move.session_name},
                )
                done.handed_over.append(move.session_name)

    def hand_over(self, name: str, actor: str) -> str | None:
        """Stop this host's runner of ``name`` (it ends its lease) and offer the session
        to the host a planned move asked for: that host's name, or None when no move of
        it is pending here. Raises when the runner cannot be stopped (nothing handed)."""
        program = program_name(name)
        if self.sup.process_info(program) is not None:
            self.sup.stop(program, wait=True)
        handed = self.store.hand_over(name, self.host, actor)
        return None if handed is None else str(handed.get("to"))

    def claim(self, name: str, actor: str) -> Claimed | None:
        """Take ``name`` over for this host on a port of its range (atomically in the
        store); None when it is not, or no longer, this host's to take. Raises
        CapacityError."""
        return self.store.claim_session(
            name,
            host=self.host,
            ports=self.ports,
            exclude_ports=busy_ports(self.ports, self.settings.bind),
            max_sessions=self.settings.max_sessions,
            ttl=self.settings.lease_seconds,
            actor=actor,
        )

    # -- claims ----------------------------------------------------------------------

    def _candidates(self, state: FleetState, now: datetime) -> list[LeasedSession]:
        offered = [o for o in state.offers if o.offered_to == self.host]
        if not self.settings.accept_failover:
            return offered
        takers = sorted(
            h.host for h in state.hosts if h.live and h.accepts_failover and (h.free_slots or 0) > 0
        )
        if self.host not in takers:
            takers.append(self.host)  # it may have room by its own count
        stagger = self.settings.health_interval
        mine = []
        for o in state.orphans:
            if not o.can_fail_over or o.host == self.host:
                continue
            place = _place(o.session_name, self.host, takers)
            waited = (now - o.claimable_since).total_seconds() if o.claimable_since else 0.0
            if place == 0 or waited >= place * stagger:
                mine.append((place, o))
        mine.sort(key=lambda pair: (pair[0], pair[1].session_name))
        return offered + [o for _, o in mine]

    def _room(self, state: FleetState) -> int:
        me = state.host(self.host)
        held = me.sessions if me is not None else 0
        slots = self.settings.max_sessions - held
        by_ram = (available_mb() - self.settings.failover_ram_floor_mb) // SESSION_MB
        return max(0, min(slots, by_ram, self.settings.start_concurrency))

    def _claim(self, state: FleetState, now: datetime, done: FailoverPass) -> None:
        candidates = self._candidates(state, now)
        if not candidates:
            return
        room = self._room(state)
        for o in candidates:
            moving = o.offered_to == self.host
            if room <= 0 and not moving:
                break
            try:
                got = self.claim(o.session_name, self.actor)
            except CapacityError as exc:
                log.warning("cannot take %s over: %s", o.session_name, exc)
                break
            if got is None:
                continue  # another host was quicker, or its host came back
            room -= 1
            done.claimed.append(got)
            log.warning("%s (port %d)", got.message, got.to_port, extra={"session": got.session})

    # -- supervisord -----------------------------------------------------------------

    def _programs(self, programs: set[str], done: FailoverPass) -> None:
        """Add the claimed sessions' programs and start them; remove the programs of
        sessions that are no longer this host's."""
        mine = self.store.list_sessions(self.host)
        names = {s.name for s in mine}
        stale = {p for p in programs if (n := session_from_program(p)) and n not in names}
        if not done.claimed and not stale:
            return
        claimed = {c.session for c in done.claimed}

        def start(to_start: list[tuple[str, int]]) -> list[str]:
            started = []
            for name, _port in to_start:
                try:
                    self.sup.start(program_name(name), wait=False)
                    started.append(name)
                except ZapvisorError as exc:
                    log.warning("cannot start %s: %s", name, exc, extra={"session": name})
            return started

        from ecosystem.supctl import apply as applier  # only when sessions come here

        try:
            with applier.apply_lock(self.paths, timeout=APPLY_LOCK_SECONDS):
                result = applier.sync(self.paths, self.settings, self.sup, mine, start)
        except ZapvisorError as exc:
            log.warning("supervisord not updated (next check tries again): %s", exc)
            return
        for program in result.removed:
            name = session_from_program(program)
            if name is None:
                continue
            done.removed.append(name)
            where = self._where(name)
            log.warning(
                "%s runs on %s now: its program here is removed",
                name,
                where,
                extra={"session": name},
            )
            with contextlib.suppress(ZapvisorError):
                self.store.add_event(
                    name,
                    "moved_away",
                    actor=self.actor,
                    detail={"host": self.host, "now_on": where},
                )
        missing = claimed - set(result.started)
        for name in sorted(missing):
            session = next((s for s in mine if s.name == name), None)
            if session is not None and session.desired_state == DesiredState.RUNNING:
                log.warning("%s was taken over but did not start here", name)

    def _where(self, name: str) -> str | None:
        try:
            return self.store.get_session(name).host
        except ZapvisorError:
            return None


def _place(session: str, host: str, takers: list[str]) -> int:
    """Where ``host`` stands in the session's order of preferred hosts."""
    return sorted(takers, key=lambda h: rank(session, h)).index(host)
