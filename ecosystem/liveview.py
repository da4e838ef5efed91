"""What a live view shows, one tick at a time: sessions, their processes, the hosts.

One tick costs two store queries (the sessions, and every session's health record in
one batch) and one report from each host (one process table, one psutil pass,
the machine's load: one round trip to a remote host, no process started there),
whatever the number of sessions: never one call per session. The active alerts are a
third query, made at most every ``alerts_every`` seconds (the health monitor raises
them at its own ticks, 5 s apart by default, so reading them more often learns nothing).

A remote host's report is asked for at the start of a tick and waited for a moment
only; a host that is slower keeps its rows as they were (its request still running,
never a second one beside it) and one that has not answered within ``HOST_TIMEOUT``
turns grey: "host unreachable since HH:MM:SS". The other hosts' rows never wait for it.

A report never starts supervisord when it finds it down: starting it is an action
(``Orchestrator.ensure_up``), a refresh only reports.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from ecosystem.conversations import BotActivity
from ecosystem.fleet import codec
from ecosystem.fleet.door import HOST_TIMEOUT
from ecosystem.health.model import Alert, Severity
from ecosystem.hostview import HostReport, HostState
from ecosystem.metrics import HostStats, ProcStats
from ecosystem.names import program_name
from ecosystem.orchestrator import Orchestrator
from ecosystem.session import utcnow
from ecosystem.states import PROCESS_SERVING, ProcessState, Status
from ecosystem.views import SessionView, down_ports

Notice = Literal["information", "warning", "error"]
ALERTS_EVERY = 5.0
"""Seconds between two reads of the active alerts."""
REMOTE_WAIT = 0.8
"""Seconds a tick waits for the remote hosts' reports before showing what it has."""


@dataclass(frozen=True, eq=False)
class Snapshot:
    """Everything one refresh learnt. ``eq=False``: each tick is a new fact."""

    taken_at: datetime
    """Wall clock of the tick; relative times ("3m ago") are computed against it."""
    views: tuple[SessionView, ...]
    procs: Mapping[int, ProcStats]
    """This host's runners, by pid."""
    host: HostStats | None
    """This host's load."""
    supervisord_up: bool
    store: str
    host_id: str
    max_sessions: int
    elapsed: float = 0.0
    """Seconds the tick took."""
    alerts: tuple[Alert, ...] | None = None
    """This host's active alerts, newest first (as of at most ``alerts_every`` seconds
    ago); None when the store keeps no alerts."""
    hosts: Mapping[str, HostState] = field(default_factory=dict)
    """Every host of the fleet (this one included) by name; empty on a lone host."""
    _by_name: dict[str, SessionView] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update((v.name, v) for v in self.views)

    @property
    def fleet(self) -> bool:
        """Whether there are other hosts than this one (the HOST column shows then)."""
        return len(self.hosts) > 1

    def host_states(self) -> Iterator[HostState]:
        """This host first, then the others by name."""
        yield from sorted(self.hosts.values(), key=lambda h: (not h.local, h.host_id))

    def view(self, name: str) -> SessionView | None:
        return self._by_name.get(name)

    def proc(self, view: SessionView) -> ProcStats | None:
        if not view.pid:
            return None
        if view.session.host == self.host_id or not self.hosts:
            return self.procs.get(view.pid)
        state = self.hosts.get(view.session.host)
        return state.report.procs.get(view.pid) if state and state.report else None


class Poller:
    """Takes snapshots; one caller at a time (the refresh loop)."""

    def __init__(
        self,
        orch: Orchestrator,
        clock: Callable[[], datetime] = utcnow,
        alerts_every: float = ALERTS_EVERY,
        monotonic: Callable[[], float] = time.monotonic,
        host_timeout: float = HOST_TIMEOUT,
        remote_wait: float = REMOTE_WAIT,
    ) -> None:
        self.orch = orch
        self.clock = clock
        self.alerts_every = alerts_every
        self.monotonic = monotonic
        self.host_timeout = host_timeout
        self.remote_wait = remote_wait
        self._alerts: tuple[Alert, ...] | None = None
        self._alerts_read: float | None = None
        self._states: dict[str, HostState] = {}
        self._asking: dict[str, concurrent.futures.Future[Any]] = {}

    def boot(self) -> None:
        """Bring supervisord (and the sessions meant to run) up, as any command does:
        here at once, on the other hosts without waiting for them."""
        links = self.orch.links
        if links is not None:
            for host in self.orch.fleet_hosts()[1:]:
                links.loop.submit(links.acall(host, "ensure_up", {}, timeout=60))
        self.orch.ensure_up()

    def tick(self) -> Snapshot:
        """Raises StoreError when the store fails, SupervisorError when this host's
        supervisord answers wrongly or not in time; a supervisord that is simply down,
        and another host that does not answer, are data."""
        started = time.monotonic()
        hosts = self.orch.fleet_hosts()
        self._ask(hosts[1:])  # first, so their round trips overlap the local work
        sessions, health = self.orch.session_rows()
        report = self.orch.host_report()
        counts = Counter(s.host for s in sessions)
        local = HostState(report.host_id, report, local=True, sessions=counts[report.host_id])
        states = {local.host_id: local}
        if len(hosts) > 1:
            states |= self._collect(hosts[1:], counts, started)
        # who holds the port of a local session whose runner is down (asked of this host)
        mine = [s for s in sessions if s.host == report.host_id]
        down = set(down_ports(mine, report.processes))
        holders = self.orch.port_holders(sorted(down)) if down else {}
        views = []
        for s in sessions:
            state = states.get(s.host)
            infos = state.report.processes if state and state.report else {}
            note = state.note if state else f"host {s.host} is not a host of this fleet"
            holder = holders.get(s.port) if s.host == report.host_id else None
            info = infos.get(program_name(s.name))
            views.append(SessionView(s, info, health.get(s.name), note, port_holder=holder))
        return Snapshot(
            taken_at=self.clock(),
            views=tuple(views),
            procs=report.procs,
            host=report.stats,
            supervisord_up=report.supervisord_up,
            store=self.orch.store_description(),
            host_id=report.host_id,
            max_sessions=report.max_sessions,
            elapsed=time.monotonic() - started,
            alerts=self._active_alerts(),
            hosts=states if len(hosts) > 1 else {},
        )

    def _ask(self, hosts: list[str]) -> None:
        """One report request per host, unless the previous one is still out."""
        links = self.orch.links
        if links is None:
            return
        for host in hosts:
            if host not in self._asking:
                call = links.within(host, "host_report", self.host_timeout)
                self._asking[host] = links.loop.submit(call)

    def _collect(
        self, hosts: list[str], counts: Counter[str], started: float
    ) -> dict[str, HostState]:
        links = self.orch.links
        assert links is not None
        left = max(0.0, self.remote_wait - (time.monotonic() - started))
        concurrent.futures.wait([self._asking[h] for h in hosts if h in self._asking], left)
        for host in hosts:
            before = self._states.get(host) or HostState(host, None)
            future = self._asking.get(host)
            if future is not None and future.done():
                del self._asking[host]
                reach = links.reach(host)
                try:
                    report = codec.decode(future.result(), HostReport)
                except Exception as exc:  # whatever it was, the host did not answer
                    since = reach.since or utcnow()
                    before = HostState(
                        host, before.report, reachable=False, since=since, error=str(exc)
                    )
                else:
                    before = HostState(host, report, latency_ms=reach.latency_ms)
            self._states[host] = HostState(
                host,
                before.report,
                reachable=before.reachable,
                since=before.since,
                error=before.error,
                latency_ms=before.latency_ms,
                sessions=counts[host],
            )
        for gone in set(self._states) - set(hosts):  # removed from the fleet meanwhile
            del self._states[gone]
            with contextlib.suppress(KeyError):
                self._asking.pop(gone).cancel()
        return {h: self._states[h] for h in hosts}

    # -- reads a screen makes when it is open (not every tick of the home screen) ------

    def alert_history(self, limit: int = 100) -> list[Alert] | None:
        """The active alerts and those cleared in the last day, newest first; None
        when the store keeps no alerts."""
        return self.orch.alert_history(limit)

    def webhook_counts(self, name: str) -> dict[str, int] | None:
        """One session's webhook deliveries by state; None without a webhook outbox."""
        return self.orch.webhook_counts(name)

    def bot_activity(self, name: str) -> BotActivity | None:
        """One session's bot: last reply and last error; None without conversations."""
        return self.orch.bot_activity(name)

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
    out: list[Change] = _new_alerts(before, after) + _host_changes(before, after)
    for view in after.views:
        old = before.view(view.name)
        if old is None:
            continue
        out += _health_changes(old, view)
        state, was = view.process_state, old.process_state
        if state != was and state in (ProcessState.FATAL, ProcessState.BACKOFF):
            why = view.process.spawnerr if view.process else ""
            if not why and view.exit_status is not None:
                why = f"exit status {view.exit_status}"
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


def _host_changes(before: Snapshot, after: Snapshot) -> list[Change]:
    """A host that stopped answering, or answers again."""
    out = []
    for host, state in after.hosts.items():
        was = before.hosts.get(host)
        if was is None or was.reachable == state.reachable:
            continue
        if state.reachable:
            out.append(Change("", "information", f"{host} answers again"))
        else:
            why = f" ({state.error})" if state.error else ""
            out.append(
                Change("", "error", f"{host}: {state.note}; its rows show their last state{why}")
            )
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
