"""What the monitor remembers of the store, so it keeps supervising while the store does
not answer (PostgreSQL restarting, a network cut, a locked SQLite file); and what it
reads back from the store's audit trail when it starts again.

Runners restarted meanwhile wait for the store before they serve (runner/startup.py), so
restarting them loses nothing and they serve the moment it is back. What the monitor
could not write (health records, a parking, its audit events: crash, auto_restart,
hung...) is written at the first pass that reads the store again, the events in order
and at the time they happened. Only the last ``EVENTS_KEPT`` events are kept.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from ecosystem.errors import SessionNotFound, StoreError, ZapvisorError
from ecosystem.health.model import MONITOR_ACTOR, SessionHealth
from ecosystem.session import Session
from ecosystem.states import DesiredState, Status
from ecosystem.store import Store
from ecosystem.supctl.rpc import ProcessInfo

log = logging.getLogger("health")

EVENTS_KEPT = 1000
"""Audit events kept while the store is down (the oldest go first): a crash loop through
an hour-long outage must not grow the monitor's memory without end."""


def park_write(store: Store, name: str, reason: str) -> None:
    """A parked session: stopped on purpose, in error with the reason."""
    try:
        store.update_session(
            name, {"desired_state": DesiredState.STOPPED}, actor=MONITOR_ACTOR, action="park"
        )
        store.set_runtime(name, {"status": Status.ERROR, "last_error": reason}, actor=MONITOR_ACTOR)
    except SessionNotFound:
        pass


def status_since(store: Store, s: Session, info: ProcessInfo) -> datetime | None:
    """When ``s`` entered its current status, from the audit trail, but not before its
    runner started (a new runner may report the status its predecessor was stuck in).
    So a restarted monitor does not start timing a stuck state again."""
    try:
        events = store.list_events(s.name, limit=20)
    except ZapvisorError:
        return None
    started = datetime.fromtimestamp(info.start, UTC) if info.start else None
    for e in events:  # newest first
        if e.action == "status" and e.to_status is not None:
            if e.to_status != s.status:
                return None
            return max(e.ts, started) if started else e.ts
    return started


class StoreMemory:
    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.sessions: dict[str, Session] = {}
        """The sessions as last read from the store."""
        self.health: dict[str, SessionHealth] = {}
        """The health records as last read or written (the passes update this dict)."""
        self.unsaved: set[str] = set()
        self.unsaved_parks: dict[str, str] = {}
        self.events: deque[tuple[datetime, str, str, Mapping[str, Any]]] = deque()
        """Audit events not written yet: (when, session, action, detail), oldest first."""
        self.dropped = 0
        self.down_since: datetime | None = None
        self._marker: object = None
        self.changed = True
        """Whether the last read found anything new."""

    def read(self, store: Store, host: str) -> tuple[list[Session], dict[str, SessionHealth], bool]:
        """(sessions, health records, whether the store answered). Raises StoreError when
        it does not answer and nothing was ever read from it.

        With a store whose change marker is one cheap query, the rows are read again
        only when it moved: at rest a pass reads no rows at all."""
        try:
            self._flush(store)
            marker = store.change_marker() if store.cheap_change_marker else None
            if marker is not None and marker == self._marker and self.down_since is None:
                self.changed = False
                return list(self.sessions.values()), self.health, True
            sessions = store.list_sessions(host)
            health = store.list_health(host)
        except StoreError as exc:
            self.failed(exc)
            if not self.sessions:
                raise
            return list(self.sessions.values()), self.health, False
        if self.down_since is not None:
            log.warning("the store answers again (it stopped at %s)", self.down_since)
            self.down_since = None
        self.sessions = {s.name: s for s in sessions}
        self.health = health
        self._marker, self.changed = marker, True
        return sessions, health, True

    def failed(self, exc: StoreError) -> None:
        if self.down_since is None:
            self.down_since = self.clock()
            log.error("the store does not answer; supervising from what it last said: %s", exc)

    def save(self, store: Store, h: SessionHealth) -> None:
        self.health[h.name] = h
        try:
            store.save_health(h)
        except SessionNotFound:  # deleted meanwhile
            pass
        except StoreError as exc:
            self.failed(exc)
            self.unsaved.add(h.name)

    def park(self, store: Store, s: Session, reason: str) -> None:
        try:
            park_write(store, s.name, reason)
        except StoreError as exc:
            self.failed(exc)
            self.unsaved_parks[s.name] = reason
        # what the passes read while the store is down: it stays stopped
        self.sessions[s.name] = s.model_copy(
            update={
                "desired_state": DesiredState.STOPPED,
                "status": Status.ERROR,
                "last_error": reason,
            }
        )

    def event(self, store: Store, name: str, action: str, detail: Mapping[str, Any]) -> None:
        """Record an audit event; kept for later while the store is down (or events of
        the outage are still waiting: they come first)."""
        at = self.clock()
        if self.down_since is None and not self.events:
            try:
                store.add_event(name, action, actor=MONITOR_ACTOR, detail=detail, ts=at)
                return
            except StoreError as exc:
                self.failed(exc)
            except ZapvisorError as exc:
                log.warning("cannot record %s for %s: %s", action, name, exc)
                return
        if len(self.events) >= EVENTS_KEPT:
            self.events.popleft()
            if not self.dropped:
                log.warning("over %d audit events wait for the store: the oldest go", EVENTS_KEPT)
            self.dropped += 1
        self.events.append((at, name, action, detail))

    def _flush(self, store: Store) -> None:
        """Events first, in order, each removed once written (a store that stops again
        midway keeps the rest); then parks, so a parked session reads back as stopped."""
        if self.dropped:
            log.warning(
                "%d audit event(s) of the outage were dropped: only the last %d were kept",
                self.dropped,
                EVENTS_KEPT,
            )
            self.dropped = 0
        while self.events:
            at, name, action, detail = self.events[0]
            try:
                store.add_event(name, action, actor=MONITOR_ACTOR, detail=detail, ts=at)
            except StoreError:
                raise
            except ZapvisorError as exc:  # not the outage: this one will never go in
                log.warning("cannot record %s for %s: %s", action, name, exc)
            self.events.popleft()
        for name, reason in list(self.unsaved_parks.items()):
            park_write(store, name, reason)
            del self.unsaved_parks[name]
        for name in list(self.unsaved):
            h = self.health.get(name)
            if h is not None:
                with contextlib.suppress(SessionNotFound):
                    store.save_health(h)
            self.unsaved.discard(name)
