"""What a live view shows, one tick at a time: sessions, their processes, the host.

One tick costs one store query, one ``getAllProcessInfo`` and one psutil pass, whatever
the number of sessions: never one call per session. The poller talks to supervisord
through its own client so a long operator action (a stop waiting for a slow runner)
never holds up the refresh, and it does not start supervisord when it finds it down:
starting it is an action (``Orchestrator.ensure_up``), a refresh only reports.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from ecosystem.errors import SupervisorError
from ecosystem.metrics import HostStats, ProcessSampler, ProcStats, host_stats
from ecosystem.models import utcnow
from ecosystem.names import program_name
from ecosystem.orchestrator import Orchestrator
from ecosystem.states import Status
from ecosystem.supctl import daemon
from ecosystem.supctl.rpc import Supervisor, SupervisorDown
from ecosystem.views import SessionView

Severity = Literal["information", "warning", "error"]
POLL_RPC_TIMEOUT = 5.0
"""Seconds a refresh waits for supervisord before reporting it as not answering."""


@dataclass(frozen=True, eq=False)
class Snapshot:
    """Everything one refresh learnt. ``eq=False``: each tick is a new fact."""

    taken_at: datetime
    """Wall clock of the tick; relative times ("3m ago") are computed against it."""
    views: tuple[SessionView, ...]
    procs: Mapping[int, ProcStats]
    """By pid."""
    restarts: Mapping[str, int]
    """Runner (re)starts seen by this poller, by session name."""
    host: HostStats | None
    supervisord_up: bool
    store: str
    host_id: str
    max_sessions: int
    elapsed: float = 0.0
    """Seconds the tick took."""
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
        sampler: ProcessSampler | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.orch = orch
        self.sampler = sampler or ProcessSampler()
        self.clock = clock
        self._sup: Supervisor | None = None
        self._pids: dict[str, int] = {}
        self._restarts: dict[str, int] = {}

    def boot(self) -> None:
        """Bring supervisord (and the sessions meant to run) up, as any command does."""
        self.orch.ensure_up()

    @property
    def sup(self) -> Supervisor:
        if self._sup is None:
            self._sup = daemon.client(self.orch.paths, timeout=POLL_RPC_TIMEOUT)
        return self._sup

    def tick(self) -> Snapshot:
        """Raises StoreError when the store fails, SupervisorError when supervisord
        answers wrongly or not in time; a supervisord that is simply down is data."""
        started = time.monotonic()
        settings = self.orch.settings
        sessions = self.orch.store.list_sessions(settings.host_id)
        try:
            infos = self.sup.all_process_info()
            up = True
        except SupervisorDown:
            infos, up = {}, False
        except SupervisorError:
            self._sup = None  # reconnect with fresh credentials next time
            raise
        views = tuple(SessionView(s, infos.get(program_name(s.name))) for s in sessions)
        self._count_restarts(views)
        procs = self.sampler.sample(v.pid for v in views if v.pid)
        return Snapshot(
            taken_at=self.clock(),
            views=views,
            procs=procs,
            restarts=dict(self._restarts),
            host=host_stats(settings.home),
            supervisord_up=up,
            store=self.orch.store.describe(),
            host_id=settings.host_id,
            max_sessions=settings.max_sessions,
            elapsed=time.monotonic() - started,
        )

    def _count_restarts(self, views: tuple[SessionView, ...]) -> None:
        names = set()
        for view in views:
            names.add(view.name)
            pid = view.pid
            if pid is None:
                continue
            last = self._pids.get(view.name)
            if last is not None and last != pid:
                self._restarts[view.name] = self._restarts.get(view.name, 0) + 1
            self._pids[view.name] = pid
        for gone in self._pids.keys() - names:
            del self._pids[gone]
            self._restarts.pop(gone, None)


@dataclass(frozen=True)
class Change:
    """A state change an operator should hear about."""

    name: str
    severity: Severity
    message: str


def notable_changes(before: Snapshot | None, after: Snapshot) -> list[Change]:
    """A runner that went FATAL or BACKOFF, a session that went ``error``, lost its
    phone, or got paired. Nothing on the first snapshot: the table shows the state."""
    if before is None:
        return []
    out: list[Change] = []
    for view in after.views:
        old = before.view(view.name)
        if old is None:
            continue
        state, was = view.process_state, old.process_state
        if state != was and state in ("FATAL", "BACKOFF"):
            why = view.process.spawnerr if view.process else ""
            if not why and view.process:
                why = f"exit status {view.process.exitstatus}"
            verb = "gave up on" if state == "FATAL" else "is restarting"
            out.append(
                Change(
                    view.name,
                    "error" if state == "FATAL" else "warning",
                    f"{view.name}: supervisord {verb} its runner ({state}: {why})",
                )
            )
            continue
        # STARTING counts: a runner reports within its first second, before
        # supervisord calls it RUNNING.
        if state not in ("RUNNING", "STARTING") or view.session.status == old.session.status:
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
