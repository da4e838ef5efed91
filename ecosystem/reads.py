"""What an operator reads: the sessions, one host's report for a live view, the health
monitor's records and alerts, doctor; and stopping everything (`shutdown`)."""

from __future__ import annotations

import contextlib
import threading
from datetime import timedelta
from typing import TYPE_CHECKING

from ecosystem import __version__
from ecosystem.errors import StoreError, StoreUnsupported, SupervisorError
from ecosystem.fleet.routing import routed
from ecosystem.health.model import Alert, SessionHealth
from ecosystem.hostview import HostReport
from ecosystem.metrics import ProcessSampler, host_stats
from ecosystem.names import program_name
from ecosystem.session import Session, utcnow
from ecosystem.session_access import SessionAccess
from ecosystem.states import PROCESS_UP, SIGNALLABLE_STATES, Status
from ecosystem.supctl import daemon
from ecosystem.supctl.rpc import ProcessInfo, Supervisor, SupervisorDown
from ecosystem.views import SessionView, port_holders

if TYPE_CHECKING:
    from ecosystem.doctor import Check

POLL_RPC_TIMEOUT = 5.0
"""Seconds a live view's report waits for supervisord before saying it does not answer."""
FIRST_PSS_AFTER = 2.0
"""Seconds after the first report before one reads the runners' PSS."""
CLEARED_KEPT = timedelta(hours=24)
"""How long a cleared alert stays in the alerts view."""


class Reads(SessionAccess):
    _poll_sup: Supervisor | None = None
    _sampler: ProcessSampler | None = None
    _report_lock: threading.Lock | None = None
    pss_sessions: frozenset[str] | None = None
    """The sessions whose runner's PSS this host's reports carry; None: every one. A
    live view sets the sessions it shows the PSS of (the session screen's)."""
    shown_sessions: frozenset[str] | None = None
    """The sessions whose runner's CPU and RSS each report reads afresh; the others'
    are read every few seconds (``metrics.FULL_EVERY``) and repeated meanwhile. None:
    every one at every report. A live view sets the rows it has on screen."""

    def list_sessions(self) -> list[SessionView]:
        """Every session of this host with its process and the monitor's records."""
        return self._views(lambda: self.store.list_sessions(self.host_id))

    def port_holders(self, ports: list[int]) -> dict[int, str]:
        """Who holds each of ``ports`` that a runner could not listen on now, on this
        host (a live view asks for the ports of the sessions whose runner is down)."""
        return port_holders(ports, self.settings.bind)

    def process_table(self) -> dict[str, ProcessInfo]:
        """supervisord's process table on this host, bringing supervisord (and the
        sessions meant to run) up first when it is down, as any command does."""
        return self._process_infos()

    def session_rows(self) -> tuple[list[Session], dict[str, SessionHealth]]:
        """The sessions of this host and their health records: two store queries,
        whatever the number of sessions (a live view's share of the store)."""
        return self.store.list_sessions(self.host_id), self._health()

    def health(self) -> dict[str, SessionHealth]:
        """The health monitor's records (restarts, exits, why down) for this host."""
        return self._health()

    @routed
    def why_down(self, name: str) -> str:
        """The best explanation supervisord can give: spawn error, exit status, the last
        lines the runner wrote on stderr."""
        return self._why_down(self.session(name).name)

    def host_report(self) -> HostReport:
        """This host's supervisord process table, its runners' CPU and memory and the
        machine's load: one process table and one pass over the runners' pids.

        A live view calls it every second: it does not start supervisord when it finds
        it down (starting it is an action: ``ensure_up``), and it asks through a client
        of its own, so a long action (a stop waiting for a slow runner) never holds it
        up. Raises SupervisorError when supervisord answers wrongly or not in time."""
        if self._report_lock is None:
            with self._open_lock:
                if self._report_lock is None:
                    self._report_lock = threading.Lock()
        with self._report_lock:
            if self._poll_sup is None:
                self._poll_sup = daemon.client(self.paths, timeout=POLL_RPC_TIMEOUT)
            if self._sampler is None:
                # The first report (a live view's start) comes back without waiting
                # for a PSS pass over every runner (~1 ms each): the next ones read it.
                self._sampler = ProcessSampler(first_pss_after=FIRST_PSS_AFTER)
            try:
                infos, up = self._poll_sup.all_process_info(), True
            except SupervisorDown:
                infos, up = {}, False
            except SupervisorError:
                self._poll_sup = None  # reconnect with fresh credentials next time
                raise
            pids = [i.pid for i in infos.values() if i.pid and i.state in SIGNALLABLE_STATES]
            pss, shown = self.pss_sessions, self.shown_sessions
            pss_of = None if pss is None else _pids(infos, pss)
            fresh_of = None if shown is None else _pids(infos, shown | (pss or frozenset()))
            procs = self._sampler.sample(pids, pss_of, fresh_of)
        s = self.settings
        return HostReport(
            host_id=self.host_id,
            version=__version__,
            taken_at=utcnow(),
            supervisord_up=up,
            max_sessions=s.max_sessions,
            base_port=s.base_port,
            processes=infos,
            procs=procs,
            stats=host_stats(s.home),
        )

    def active_alerts(self) -> list[Alert] | None:
        """This host's raised alerts, newest first; None when the store keeps none."""
        try:
            return self.store.list_alerts(self.host_id, active=True)
        except StoreUnsupported:
            return None

    def alerts(self, *, include_cleared: bool = False, limit: int = 100) -> list[Alert]:
        """This host's alerts, newest first: the active ones, or the history too.
        Brings supervisord (and so the health monitor that raises them) back if down."""
        self.ensure_up()
        try:
            return self.store.list_alerts(
                self.host_id, active=None if include_cleared else True, limit=limit
            )
        except StoreUnsupported as exc:
            raise StoreError(
                f"{exc}; see the health monitor's log, {self.paths.logs}/zapvisor-health.log"
            ) from None

    def alert_history(self, limit: int = 100) -> list[Alert] | None:
        """The active alerts and those cleared in the last ``CLEARED_KEPT``, newest
        first; None when the store keeps no alerts."""
        try:
            found = self.store.list_alerts(self.host_id, limit=limit)
        except StoreUnsupported:
            return None
        oldest = utcnow() - CLEARED_KEPT
        return [a for a in found if a.cleared_at is None or a.cleared_at >= oldest]

    def doctor(self) -> list[Check]:
        """Every moving part of this host checked, each with what to do when not OK."""
        from ecosystem.doctor import run_checks  # its checks' modules load for doctor alone

        return run_checks(self)

    def shutdown(self) -> bool:
        """Stop every runner, then supervisord; False when it was not running."""
        if not daemon.is_up(self.sup):
            return False
        self._report_stopping()
        daemon.shutdown(self.paths, self.sup)
        return True

    def _report_stopping(self) -> None:
        """Write what each running runner reports as it stops (disconnected, no QR),
        one session after the other, before they all stop: then none of them has
        anything left to write, and two hundred runners do not queue at once for the
        store's lock (SQLite's) in the seconds they have to exit."""
        try:
            infos = self.sup.all_process_info()
        except SupervisorDown:
            return
        gone = {"status": Status.DISCONNECTED, "qr_payload": None, "qr_expires_at": None}
        for s in self._host_sessions():
            info = infos.get(program_name(s.name))
            if info is None or info.state not in PROCESS_UP or s.status == Status.ERROR:
                continue  # not running, or its error stays (the runner keeps it too)
            with contextlib.suppress(StoreError):
                self.store.set_runtime(s.name, gone, actor=self.actor)

    def write_boot_config(self) -> None:
        """Write supervisord's config from the store for `zapvisor serve`, refusing
        while a supervisord already runs on this state dir."""
        from ecosystem.supctl import apply as applier

        self.paths.ensure()
        if daemon.is_up(self.sup):
            raise SupervisorError(
                f"supervisord already runs for {self.paths.home} (pid {self.sup.pid()}): "
                "`zapvisor shutdown` it first, then start the service"
            )
        with applier.apply_lock(self.paths):
            applier.write_for_boot(self.paths, self.settings, self._host_sessions())

    def store_description(self) -> str:
        """Which store, and where (never with a password)."""
        return self.store.describe()

    @property
    def pushes_changes(self) -> bool:
        """Whether the store itself says when a session changed (LISTEN/NOTIFY)."""
        return self.store.pushes_changes

    def wait_for_change(self, timeout: float) -> bool:
        """Block until some session may have changed, at most ``timeout`` seconds."""
        return self.store.wait_for_change(timeout)


def _pids(infos: dict[str, ProcessInfo], sessions: frozenset[str]) -> set[int]:
    """The pids of ``sessions``' runners in supervisord's process table."""
    programs = (infos.get(program_name(n)) for n in sessions)
    return {i.pid for i in programs if i is not None and i.pid}
