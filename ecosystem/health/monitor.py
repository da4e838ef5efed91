"""The monitor's passes: observe (store + supervisord), decide (policy.py, alerts.py),
act (XML-RPC starts, stops and kills; store writes; audit events).

``react`` handles exits and due restarts (run after each process event);
``check`` is the periodic full pass that adds /health probes, memory, stuck states and
alerts.

While the store does not answer, the monitor supervises from what it last read
(outage.py); it judges no stuck state then (the statuses it knows are stale) and does
not count a runner refusing connections as hung (it is waiting for the store).
"""

from __future__ import annotations

import functools
import logging
import os
import time
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ecosystem import boot
from ecosystem.errors import SessionNotFound, StoreError, ZapvisorError
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
from ecosystem.health.memory import MemoryMeter
from ecosystem.health.model import SessionHealth
from ecosystem.health.notify import Notifier
from ecosystem.health.outage import StoreMemory, status_since
from ecosystem.health.probe import BUSY, REFUSED, Saturated, probe_many, second_opinion
from ecosystem.health.proctable import ProcessTable
from ecosystem.metrics import host_stats
from ecosystem.models import Session, utcnow
from ecosystem.names import program_name
from ecosystem.paths import StatePaths
from ecosystem.settings import Settings
from ecosystem.states import (
    EXITED_STATES,
    PROCESS_SERVING,
    RUNNER_RECYCLE_EXIT,
    DesiredState,
    ProcessState,
)
from ecosystem.store import Store
from ecosystem.supctl.rpc import ProcessInfo, Supervisor

log = logging.getLogger("health")

MONITOR_PROGRAM = "zapvisor-health"
DOWN = EXITED_STATES


@dataclass
class Observed:
    sessions: list[Session]
    health: dict[str, SessionHealth]
    procs: dict[str, ProcessInfo]
    store_up: bool = True


class Monitor:
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
        self.hung = policy.HungTracker(settings.health_failures, settings.start_timeout)
        self.status_clock = policy.StatusClock()
        self.cpu = CpuTracker()
        self.memory = MemoryMeter()
        self.procs = ProcessTable(sup.all_process_info)
        """Kept from process events when there are any (the listener feeds them)."""
        self.checks = 0
        self.booted = False
        self.started_at = clock()
        self.next_due: datetime | None = None
        self.memo = StoreMemory(clock)
        """What the store last said, to supervise from while it is down."""
        self.saturated = Saturated()
        self.settings_problem: dict[str, Any] | None = None
        """What is wrong with runtime.env, if anything (health/envwatch.py)."""
        self.reconfigure(settings)

    def reconfigure(self, settings: Settings) -> None:
        self.settings = settings
        self.paths = StatePaths(settings.home)
        self.host = settings.host_id
        self.policy = policy.Policy.from_settings(settings)
        self.thresholds = Thresholds.from_settings(settings)
        self.hung.failures = settings.health_failures
        self.hung.start_timeout = settings.start_timeout
        self.dead_letters = store_dead_letters(self.store, self.host)

    # -- observing -------------------------------------------------------------------

    def observe(self) -> Observed:
        sessions, health, up = self.memo.read(self.store, self.host)
        return Observed(sessions, health, self.procs.snapshot(), up)

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
        self._probe(obs, now)
        self._memory_and_stuck(obs, now)
        if obs.store_up:
            try:
                self._alerts(obs, now)
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

    # -- exits, parking, restarts --------------------------------------------------------

    def _lifecycle(self, obs: Observed, now: datetime) -> None:
        due: list[datetime] = []
        for s in obs.sessions:
            before = obs.health.get(s.name) or SessionHealth(name=s.name)
            h = self._one(s, before, obs.procs.get(program_name(s.name)), now)
            if h.next_restart_at is not None:
                due.append(h.next_restart_at)
            obs.health[s.name] = h
            if not h.same_as(before):
                self._save(h)
        self.next_due = min(due) if due else None

    def _one(
        self, s: Session, h: SessionHealth, info: ProcessInfo | None, now: datetime
    ) -> SessionHealth:
        if h.parked_at is not None and s.desired_state == DesiredState.RUNNING:
            h = policy.unpark(h)
            self._event(s.name, "unpark", {})
            if info is not None and info.state in DOWN:
                # Still down from the crash that parked it (already counted): the
                # operator's start is on its way; retry only if it does not come up.
                grace = timedelta(seconds=self.settings.start_timeout)
                h = h.model_copy(update={"next_restart_at": now + grace})
        if s.desired_state != DesiredState.RUNNING or info is None:
            self.hung.forget(s.name)
            return h.model_copy(update={"next_restart_at": None}) if h.next_restart_at else h
        state = info.state
        if state in DOWN and h.next_restart_at is None:
            # events said "down"; exit status and spawn error come from supervisord
            fresh = self.sup.process_info(program_name(s.name))
            if fresh is None or fresh.state not in DOWN:
                self.procs.invalidate()  # the table was behind: read it again next pass
                return h
            info = fresh
            if policy.recycled(info.state, info.exitstatus):
                reason = f"recycled: exited with status {RUNNER_RECYCLE_EXIT} to start afresh"
                h = self._restart_for(s, h, now, reason, kind="recycle", stop=False)
            else:
                h = self._exited(s, h, info, now)
        if state in DOWN | {ProcessState.STOPPED} and policy.restart_due(h, now):
            h = self._start(s, h, now)
        elif state == ProcessState.RUNNING and h.next_restart_at is None and h.why_down:
            h = h.model_copy(update={"why_down": None})
        elif state in PROCESS_SERVING and h.next_restart_at is not None:
            # started by someone else (an operator) while a restart was pending
            h = h.model_copy(update={"next_restart_at": None})
        return h

    def _exited(
        self, s: Session, h: SessionHealth, info: ProcessInfo, now: datetime
    ) -> SessionHealth:
        program = program_name(s.name)
        try:
            status: int | None = self.sup.exit_status(info)
            stderr = self.sup.tail_stderr(program, 4096)
        except ZapvisorError:
            status, stderr = (None if info.state == ProcessState.FATAL else info.exitstatus), ""
        what = policy.describe_exit(info.state, status, info.spawnerr)
        h, decision = policy.on_exit(
            self.policy, h, now, what=what, exit_status=status, stderr_tail=stderr
        )
        self.hung.forget(s.name)
        if decision.park:
            self._park(s, decision.reason)
            log.error("%s parked: %s", s.name, decision.reason, extra={"session": s.name})
            return h
        h = h.model_copy(update={"last_restart_reason": what})
        self._event(
            s.name,
            "crash",
            {
                "what": what,
                "exit_status": status,
                "exits_in_window": decision.exits_in_window,
                "restart_in": decision.delay,
            },
        )
        log.warning(
            "%s %s; restart in %g s (%d exit(s) in the window)",
            s.name,
            what,
            decision.delay,
            decision.exits_in_window,
            extra={"session": s.name},
        )
        return h

    def _park(self, s: Session, reason: str) -> None:
        self.memo.park(self.store, s, reason)

    def _start(self, s: Session, h: SessionHealth, now: datetime) -> SessionHealth:
        try:
            fresh = self.store.get_session(s.name)
        except SessionNotFound:
            return h
        except StoreError as exc:
            # no operator can stop it meanwhile: every command needs the store
            self.memo.failed(exc)
            fresh = s
        if fresh.desired_state != DesiredState.RUNNING:
            # an operator stopped it since this pass read the store
            return h.model_copy(update={"next_restart_at": None})
        try:
            self.sup.start(program_name(s.name), wait=False)
        except ZapvisorError as exc:
            # Seen as a new exit on the next pass (FATAL), with its own backoff.
            log.warning("cannot start %s: %s", s.name, exc, extra={"session": s.name})
            return h.model_copy(update={"next_restart_at": None})
        self.procs.note(program_name(s.name), ProcessState.STARTING)
        h = policy.restarted(h, now)
        self.status_clock.forget(s.name)
        detail = {"reason": h.last_restart_reason, "restarts": h.restarts}
        self._event(s.name, "auto_restart", detail)
        log.info("%s restarted (%s)", s.name, h.last_restart_reason, extra={"session": s.name})
        return h

    def _restart_for(
        self,
        s: Session,
        h: SessionHealth,
        now: datetime,
        reason: str,
        *,
        kind: str,
        kill: bool = False,
        stop: bool = True,
        **detail: Any,
    ) -> SessionHealth:
        """Stop the runner (KILL when it is hung: it would not handle TERM; nothing when
        it already exited to be recycled) and mark the restart due (backed off, counted
        in the crash window: see ``policy.on_forced_restart``); the next pass that sees
        it stopped starts it, unless the restarts looped and the session is parked."""
        program = program_name(s.name)
        try:
            if stop:
                self.sup.stop(program, wait=False)
                self.procs.note(program, ProcessState.STOPPING)
            if kill:
                self.sup.signal(program, "KILL")
        except (ZapvisorError, xmlrpc.client.Fault) as exc:
            log.warning("stopping %s: %s", s.name, exc, extra={"session": s.name})
        self.hung.forget(s.name)
        h, decision = policy.on_forced_restart(self.policy, h, now, reason=reason)
        detail.update(exits_in_window=decision.exits_in_window, restart_in=decision.delay)
        self._event(s.name, kind, {"reason": reason, **detail})
        if decision.park:
            self._park(s, decision.reason)
            log.error("%s parked: %s", s.name, decision.reason, extra={"session": s.name})
        else:
            log.warning(
                "%s: %s; restart in %g s", s.name, reason, decision.delay, extra={"session": s.name}
            )
        self._save(h)
        return h

    # -- hung, memory, stuck ---------------------------------------------------------------

    def _running(self, obs: Observed) -> list[tuple[Session, ProcessInfo, SessionHealth]]:
        """Sessions meant to run whose runner is RUNNING with no restart pending."""
        out = []
        for s in obs.sessions:
            info = obs.procs.get(program_name(s.name))
            h = obs.health.get(s.name) or SessionHealth(name=s.name)
            if (
                s.desired_state == DesiredState.RUNNING
                and info is not None
                and info.state == ProcessState.RUNNING
                and info.pid
                and h.next_restart_at is None
            ):
                out.append((s, info, h))
            else:
                self.hung.forget(s.name)
        return out

    def _probe(self, obs: Observed, now: datetime) -> None:
        running = self._running(obs)
        timeout = self.policy.probe_timeout
        results = probe_many(self.settings.bind, {s.name: s.port for s, _, _ in running}, timeout)
        sockets = {s.name: self.paths.health_socket(s.name) for s, _, _ in running}
        results = second_opinion(results, sockets, timeout)
        self.saturated.note({name for name, r in results.items() if r == BUSY})
        for s, info, h in running:
            pid, up = info.pid or 0, info.uptime or 0
            if not obs.store_up and results[s.name] == REFUSED:
                continue  # a runner started during the outage waits for the store
            failed = self.hung.observe(s.name, pid, results[s.name], up, now)
            if self.hung.hung(s.name):
                how = "refused" if results[s.name] == REFUSED else "failed"
                reason = f"hung: /health {how} {failed} checks in a row"
                obs.health[s.name] = self._restart_for(
                    s, h, now, reason, kind="hung", kill=True, failed_checks=failed
                )

    def _memory_and_stuck(self, obs: Observed, now: datetime) -> None:
        cap = self.policy.memory_cap_mb
        running = self._running(obs)
        self.memory.prune({info.pid for _, info, _ in running if info.pid})
        for s, info, h in running:
            pid = info.pid or 0
            if cap:
                pss = self.memory.pss_over(pid, cap * 1024 * 1024)
                reason = policy.memory_reason(self.policy, pss) if pss is not None else None
                if reason:
                    mb = round((pss or 0) / 2**20)
                    obs.health[s.name] = self._restart_for(
                        s, h, now, reason, kind="memory", pss_mb=mb, cap_mb=cap
                    )
                    continue
            if not self.hung.up(s.name, pid) or not obs.store_up:
                # not answering yet: the status in the store may still be the last runner's
                self.status_clock.forget(s.name)
                continue
            first_seen = functools.partial(status_since, self.store, s, info)
            since = self.status_clock.observe(s.name, s.status, now, first_seen)
            reason = policy.stuck_reason(self.policy, s, since, now)
            if reason:
                obs.health[s.name] = self._restart_for(
                    s, h, now, reason, kind="stuck", status=str(s.status), since=since.isoformat()
                )

    # -- alerts ---------------------------------------------------------------------------

    def _alerts(self, obs: Observed, now: datetime) -> None:
        active = self.store.list_alerts(self.host, active=True, limit=10_000)
        keys = {a.key for a in active}
        wanted = host_alerts(
            self.host, self.thresholds, host_stats(self.paths.home), self.cpu, now, keys
        )
        wanted += session_alerts(
            self.host, self.thresholds, obs.sessions, obs.procs, obs.health, keys
        )
        wanted += dead_letter_alerts(self.host, self.dead_letters())
        apply_alerts(self.store, self.host, wanted, active)

    # -- plumbing -------------------------------------------------------------------------

    def _save(self, h: SessionHealth) -> None:
        self.memo.save(self.store, h)

    def _event(self, name: str, action: str, detail: dict[str, Any]) -> None:
        self.memo.event(self.store, name, action, detail)

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
            },
        )
