"""What a live view shows, one tick at a time: sessions, their processes, the host.

One tick costs two store queries (the sessions, and every session's health record in
one batch) and one report from the host (one ``getAllProcessInfo``, one psutil pass),
whatever the number of sessions: never one call per session. The active alerts are a
third query, made at most every ``alerts_every`` seconds (the health monitor raises
them at its own ticks, 5 s apart by default, so reading them more often learns nothing).

The host's report never starts supervisord when it finds it down: starting it is an
action (``Orchestrator.ensure_up``), a refresh only reports.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from ecosystem.health.model import Alert, Severity
from ecosystem.metrics import HostStats, ProcStats
from ecosystem.models import utcnow
from ecosystem.names import program_name
from ecosystem.orchestrator import Orchestrator
from ecosystem.states import PROCESS_SERVING, ProcessState, Status
from ecosystem.views import SessionView

Notice = Literal["information", "warning", "error"]
ALERTS_EVERY = 5.0
"""Seconds between two reads of the active alerts."""


@dataclass(frozen=True, eq=False)
class Snapshot:
    """Everything one refresh learnt. ``eq=False``: each tick is a new fact."""

    taken_at: datetime
    """Wall clock of the tick; relative times ("3m ago") are computed against it."""
    views: tuple[SessionView, ...]
    procs: Mapping[int, ProcStats]
    """By pid."""
    host: HostStats | None
    supervisord_up: bool
    store: str
    host_id: str
    max_sessions: int
    elapsed: float = 0.0
    """Seconds the tick took."""
    alerts: tuple[Alert, ...] | None = None
    """This host's active alerts, newest first (as of at most ``alerts_every`` seconds
    ago); None when the store keeps no alerts."""
    _by_name: dict[str, SessionView] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update((v.name, v) for v in self.views)

    def view(self, name: str) -> SessionView | None:
        return self._by_name.get(name)

    def proc(self, view: SessionView) -> ProcStats | None:
        return self.procs.get(view.pid) if view.pid else None


class Poller:
    """Takes snapshots; one caller at a time (the refresh loop)."""

    def __init__(
        self,
        orch: Orchestrator,
        clock: Callable[[], datetime] = utcnow,
        alerts_every: float = ALERTS_EVERY,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.orch = orch
        self.clock = clock
        self.alerts_every = alerts_every
        self.monotonic = monotonic
        self._alerts: tuple[Alert, ...] | None = None
        self._alerts_read: float | None = None

    def boot(self) -> None:
        """Bring supervisord (and the sessions meant to run) up, as any command does."""
        self.orch.ensure_up()

    def tick(self) -> Snapshot:
        """Raises StoreError when the store fails, SupervisorError when supervisord
        answers wrongly or not in time; a supervisord that is simply down is data."""
        started = time.monotonic()
        sessions, health = self.orch.session_rows()
        report = self.orch.host_report()
        infos = report.processes
        views = tuple(
            SessionView(s, infos.get(program_name(s.name)), health.get(s.name)) for s in sessions
        )
        return Snapshot(
            taken_at=self.clock(),
            views=views,
            procs=report.procs,
            host=report.stats,
            supervisord_up=report.supervisord_up,
            store=self.orch.store_description(),
            host_id=report.host_id,
            max_sessions=report.max_sessions,
            elapsed=time.monotonic() - started,
            alerts=self._active_alerts(),
        )

    # -- reads a screen makes when it is open (not every tick of the home screen) ------

    def alert_history(self, limit: int = 100) -> list[Alert] | None:
        """The active alerts and those cleared in the last day, newest first; None
        when the store keeps no alerts."""
        return self.orch.alert_history(limit)

    def webhook_counts(self, name: str) -> dict[str, int] | None:
        """One session's webhook deliveries by state; None without a webhook outbox."""
        return self.orch.webhook_counts(name)

    def _active_alerts(self) -> tuple[Alert, ...] | None:
        now = self.monotonic()
        if self._alerts_read is not None and now - self._alerts_read < self.alerts_every:
            return self._alerts
        found = self.orch.active_alerts()
        self._alerts = None if found is None else tuple(found)
        self._alerts_read = now
        return self._alerts


@dataclass(frozen=True)
class Change:
    """A state change an operator should hear about."""

    name: str
    severity: Notice
    message: str


def notable_changes(before: Snapshot | None, after: Snapshot) -> list[Change]:
    """A runner that went FATAL or BACKOFF, a session that went ``error``, lost its
    phone, or got paired. Nothing on the first snapshot: the table shows the state."""
    if before is None:
        return []
    out: list[Change] = _new_alerts(before, after)
    for view in after.views:
        old = before.view(view.name)
        if old is None:
            continue
        out += _health_changes(old, view)
        state, was = view.process_state, old.process_state
        if state != was and state in (ProcessState.FATAL, ProcessState.BACKOFF):
            why = view.process.spawnerr if view.process else ""
            if not why and view.process:
                why = f"exit status {view.process.exitstatus}"
            verb = "gave up on" if state == ProcessState.FATAL else "is restarting"
            out.append(
                Change(
                    view.name,
                    "error" if state == ProcessState.FATAL else "warning",
                    f"{view.name}: supervisord {verb} its runner ({state}: {why})",
                )
            )
            continue
        # STARTING counts: a runner reports within its first second, before
        # supervisord calls it RUNNING.
        if state not in PROCESS_SERVING or view.session.status == old.session.status:
            continue
        status = view.session.status
        if status == Status.ERROR:
            reason = view.session.last_error or "no reason given"
            out.append(Change(view.name, "error", f"{view.name}: error: {reason}"))
        elif status == Status.PHONE_DISCONNECTED:
            out.append(
                Change(view.name, "warning", f"{view.name}: the phone unlinked this session")
            )
        elif status == Status.CONNECTED and old.session.status == Status.WAITING_SCAN:
            phone = view.session.phone or "?"
            out.append(Change(view.name, "information", f"{view.name}: connected as {phone}"))
    return out


def _health_changes(old: SessionView, view: SessionView) -> list[Change]:
    """What the health monitor did since: parked the session, or restarted its runner."""
    h = view.health
    if h is None:
        return []
    if view.parked and not old.parked:
        why = h.why_down or view.session.last_error or "crash loop"
        return [Change(view.name, "error", f"{view.name}: parked: {why} (s starts it again)")]
    if view.restarts > old.restarts:
        reason = h.last_restart_reason or "no reason recorded"
        return [
            Change(view.name, "warning", f"{view.name}: the health monitor restarted it ({reason})")
        ]
    return []


def _new_alerts(before: Snapshot, after: Snapshot) -> list[Change]:
    """Alerts raised since the previous read (none on the first read: the header
    counts the ones already active)."""
    if before.alerts is None or after.alerts is None:
        return []
    known = {a.id for a in before.alerts}
    return [
        Change(
            a.session_name or "",
            "error" if a.severity == Severity.CRITICAL else "warning",
            f"alert: {a.message}",
        )
        for a in reversed(after.alerts)  # oldest first
        if a.id not in known
    ]
