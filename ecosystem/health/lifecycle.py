"""The monitor's part that acts on runners: exits (crash, recycle), parking, restarts,
and the restarts the checks of running runners ask for (liveness.py).

``_lifecycle`` runs after each process event and in every check (monitor.py): a runner
that exited is restarted after its backoff, or parked when it crash-loops (policy.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ecosystem.errors import SessionNotFound, StoreError, ZapvisorError
from ecosystem.health import policy
from ecosystem.health.liveness import Liveness, Restart, Running
from ecosystem.health.model import SessionHealth
from ecosystem.health.outage import StoreMemory
from ecosystem.health.proctable import ProcessTable
from ecosystem.names import program_name
from ecosystem.session import Session
from ecosystem.settings import Settings
from ecosystem.states import (
    EXITED_STATES,
    PROCESS_SERVING,
    RUNNER_RECYCLE_EXIT,
    DesiredState,
    ProcessState,
)
from ecosystem.store import Store
from ecosystem.supctl.rpc import Fault, ProcessInfo, Supervisor

log = logging.getLogger("health")

DOWN = EXITED_STATES


@dataclass
class Observed:
    sessions: list[Session]
    health: dict[str, SessionHealth]
    procs: dict[str, ProcessInfo]
    store_up: bool = True
    changed: bool = True
    """Whether the store said something new since the previous pass."""


class Lifecycle:
    """Exits, parking and restarts; the monitor (monitor.py) sets these up."""

    store: Store
    sup: Supervisor
    settings: Settings
    policy: policy.Policy
    live: Liveness
    procs: ProcessTable
    memo: StoreMemory
    next_due: datetime | None
    _empty: dict[str, SessionHealth]

    # -- exits, parking, restarts --------------------------------------------------------

    def _record(self, obs: Observed, name: str) -> SessionHealth:
        """The session's health record, or the empty one it has until the first event
        (one object per session, not a new one per session per pass)."""
        found = obs.health.get(name)
        if found is None:
            found = self._empty.get(name)
            if found is None:
                found = self._empty[name] = SessionHealth(name=name)
        return found

    def _lifecycle(self, obs: Observed, now: datetime) -> None:
        due: list[datetime] = []
        for s in obs.sessions:
            before = self._record(obs, s.name)
            h = self._one(s, before, obs.procs.get(program_name(s.name)), now)
            if h.next_restart_at is not None:
                due.append(h.next_restart_at)
            if h is not before:  # the passes return the same record when nothing changed
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
            self.live.forget(s.name)
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
        self.live.forget(s.name)
        if decision.park:
            self._save(h)  # before the park, as in _restart_for (the pass saves it again)
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
        self.live.status_clock.forget(s.name)
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
        except (ZapvisorError, Fault) as exc:
            log.warning("stopping %s: %s", s.name, exc, extra={"session": s.name})
        self.live.forget(s.name)
        h, decision = policy.on_forced_restart(self.policy, h, now, reason=reason)
        detail.update(exits_in_window=decision.exits_in_window, restart_in=decision.delay)
        self._event(s.name, kind, {"reason": reason, **detail})
        self._save(h)  # before the park: whoever reads the session stopped reads why
        if decision.park:
            self._park(s, decision.reason)
            log.error("%s parked: %s", s.name, decision.reason, extra={"session": s.name})
        else:
            log.warning(
                "%s: %s; restart in %g s", s.name, reason, decision.delay, extra={"session": s.name}
            )
        return h

    # -- hung, memory, stuck ---------------------------------------------------------------

    def _running(self, obs: Observed) -> list[Running]:
        """Sessions meant to run whose runner is RUNNING with no restart pending."""
        out = []
        for s in obs.sessions:
            info = obs.procs.get(program_name(s.name))
            h = self._record(obs, s.name)
            if (
                s.desired_state == DesiredState.RUNNING
                and info is not None
                and info.state == ProcessState.RUNNING
                and info.pid
                and h.next_restart_at is None
            ):
                out.append((s, info, h))
            else:
                self.live.forget(s.name)
        return out

    def _restart_all(self, obs: Observed, now: datetime, found: list[Restart]) -> None:
        for r in found:
            s, _info, h = r.running
            obs.health[s.name] = self._restart_for(
                s, h, now, r.reason, kind=r.kind, kill=r.kill, **r.detail
            )

    def _save(self, h: SessionHealth) -> None:
        self.memo.save(self.store, h)

    def _event(self, name: str, action: str, detail: dict[str, Any]) -> None:
        self.memo.event(self.store, name, action, detail)
