"""The monitor's passes: observe (store + supervisord), decide (policy.py, alerts.py),
act (XML-RPC starts, stops and kills; store writes; audit events).

``react`` handles exits and due restarts (run after each process event);
``check`` is the periodic full pass that adds the checks of running runners (hung,
saturated, memory, stuck: liveness.py) and alerts.

While the store does not answer, the monitor supervises from what it last read
(outage.py); it judges no stuck state then (the statuses it knows are stale) and does
not count a runner refusing connections as hung (it is waiting for the store).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ecosystem import boot
from ecosystem.errors import StoreError, ZapvisorError
from ecosystem.health import bootpass, policy, status
from ecosystem.health.alerts import (
    CpuTracker,
    Thresholds,
    apply_alerts,
    dead_letter_alerts,
    host_alerts,
    session_alerts,
    store_dead_letters,
)
from ecosystem.health.failover import Failover
from ecosystem.health.lifecycle import Lifecycle, Observed
from ecosystem.health.liveness import Liveness
from ecosystem.health.model import SessionHealth
from ecosystem.health.notify import Notifier
from ecosystem.health.outage import StoreMemory
from ecosystem.health.proctable import ProcessTable
from ecosystem.metrics import host_stats
from ecosystem.names import session_from_program
from ecosystem.paths import StatePaths
from ecosystem.session import utcnow
from ecosystem.settings import Settings
from ecosystem.states import Status
from ecosystem.store import Store
from ecosystem.supctl.rpc import Supervisor

log = logging.getLogger("health")

MONITOR_PROGRAM = "zapvisor-health"
ALERT_EVERY = 30.0
"""Seconds between two alert passes when nothing they are made of changed."""


class Monitor(Lifecycle):
    def __init__(
        self,
        settings: Settings,
        store: Store,
        sup: Supervisor,
        *,
        clock: Callable[[], datetime] = utcnow,
        notifier: Notifier | None = None,
    ) -> None:
        self.store = store
        self.sup = sup
        self.clock = clock
        self.notifier = notifier
        self.live = Liveness(settings, policy.Policy.from_settings(settings))
        self.cpu = CpuTracker()
        self.procs = ProcessTable(sup.all_process_info)
        """Kept from process events when there are any (the listener feeds them)."""
        self.checks = 0
        self.booted = False
        self.started_at = clock()
        self.next_due: datetime | None = None
        self.memo = StoreMemory(clock)
        """What the store last said, to supervise from while it is down."""
        self.settings_problem: dict[str, Any] | None = None
        """What is wrong with runtime.env, if anything (health/envwatch.py)."""
        self.failover: Failover | None = None
        """Claims, hand-overs and moved-away programs (a shared store only)."""
        self._empty: dict[str, SessionHealth] = {}
        self._alerted = 0.0
        self.alerts_due = True
        """Set when what alerts are made of may have changed (the store, a process
        state, the settings): the alert pass runs at the next check, and otherwise
        every ALERT_EVERY seconds (host memory, CPU, disk)."""
        self.reconfigure(settings)

    def reconfigure(self, settings: Settings) -> None:
        self.alerts_due = True
        self.settings = settings
        self.paths = StatePaths(settings.home)
        self.host = settings.host_id
        self.policy = policy.Policy.from_settings(settings)
        self.thresholds = Thresholds.from_settings(settings)
        self.live.reconfigure(settings, self.policy)
        self.dead_letters = store_dead_letters(self.store, self.host)
        if self.failover is not None:
            self.failover.reconfigure(settings)

    # -- observing -------------------------------------------------------------------

    def observe(self) -> Observed:
        sessions, health, up = self.memo.read(self.store, self.host)
        return Observed(sessions, health, self.procs.snapshot(), up, self.memo.changed)

    # -- the passes --------------------------------------------------------------------

    def react(self) -> Observed:
        """Exits and due restarts only: what a process event may have changed."""
        obs = self.observe()
        self._lifecycle(obs, self.clock())
        return obs

    def check(self) -> None:
        """The full periodic pass."""
        began = time.monotonic()
        if not self.booted:
            try:
                self.boot()
            except ZapvisorError as exc:  # retried next check; supervise meanwhile
                log.warning("boot pass postponed: %s", exc)
        obs = self.react()
        now = self.clock()
        # after the hang checks' restarts, those sessions are no longer "running"
        self._restart_all(obs, now, self.live.probe(self._running(obs), now, store_up=obs.store_up))
        found = self.live.memory_and_stuck(
            self._running(obs), self.store, now, store_up=obs.store_up
        )
        self._restart_all(obs, now, found)
        self._failover(obs, now)
        clock = time.monotonic()
        due = (
            self.alerts_due
            or obs.changed
            or clock - self._alerted >= ALERT_EVERY
            or any(s.status == Status.ERROR for s in obs.sessions)  # may settle into one
            or (self.failover is not None and bool(self.failover.last.alerts))
        )
        if obs.store_up and due:
            try:
                self._alerts(obs, now)
                self.alerts_due, self._alerted = False, clock
            except StoreError as exc:
                self.memo.failed(exc)
        self.checks += 1
        self._write_status(obs, now, time.monotonic() - began)
        if self.notifier is not None:
            self.notifier.wake()

    def boot(self) -> boot.StartReport:
        """Start what this supervisord never started (see bootpass.py); retried at the
        next check when it fails (store or supervisord unavailable)."""
        report = bootpass.start_never_started(self.settings, self.store, self.sup)
        self.booted = True
        return report

    # -- alerts ---------------------------------------------------------------------------

    def _alerts(self, obs: Observed, now: datetime) -> None:
        active = self.store.list_alerts(self.host, active=True, limit=10_000)
        keys = {a.key for a in active}
        wanted = host_alerts(
            self.host, self.thresholds, host_stats(self.paths.home), self.cpu, now, keys
        )
        wanted += session_alerts(
            self.host,
            self.thresholds,
            obs.sessions,
            obs.procs,
            obs.health,
            keys,
            at=int(time.time()),  # the table's ``now`` is each program's last change
        )
        wanted += dead_letter_alerts(self.host, self.dead_letters())
        if self.failover is not None:
            wanted += self.failover.last.alerts
        apply_alerts(self.store, self.host, wanted, active)

    # -- plumbing -------------------------------------------------------------------------

    def _write_status(self, obs: Observed, now: datetime, took: float) -> None:
        """`monitor.json`: proof of life for `zapvisor doctor`, the TUI and tests."""
        status.write(
            self.paths,
            {
                "pid": os.getpid(),
                "started_at": self.started_at.isoformat(),
                "checks": self.checks,
                "last_check_at": now.isoformat(),
                "last_check_ms": round(took * 1000, 1),
                "interval": self.policy.interval,
                "sessions": len(obs.sessions),
                "next_restart_at": self.next_due.isoformat() if self.next_due else None,
                "store_down_since": down.isoformat() if (down := self.memo.down_since) else None,
                "settings_error": self.settings_problem,
                "failover": self._failover_status(),
            },
        )

    def _failover(self, obs: Observed, now: datetime) -> None:
        """Claims of silent hosts' sessions, hand-overs, moved-away programs."""
        if not obs.store_up or self.failover is None:
            return
        programs = {p for p in obs.procs if session_from_program(p)}
        try:
            self.failover.check(now, programs)
        except StoreError as exc:
            self.memo.failed(exc)
        except ZapvisorError as exc:
            log.warning("failover pass: %s", exc)

    def _failover_status(self) -> dict[str, Any] | None:
        if self.failover is None:
            return None
        last = self.failover.last
        return {
            "claimed": [c.session for c in last.claimed],
            "handed_over": last.handed_over,
            "removed": last.removed,
        }
