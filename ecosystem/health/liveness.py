"""The checks of running runners: is each alive (heartbeat, else `/health`), is its port
saturated, is it over its memory cap, is it stuck in a status. They decide; the monitor
acts (monitor.py stops and restarts what they name).

A runner that beat recently (``fresh_for``, ecosystem/heartbeat.py) is alive;
only the others, and a few of the beating ones in turn, are asked ``/health``. A beat
also says whether the runner's port was full, so a saturated port is reported without
asking it.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ecosystem.health import policy
from ecosystem.health.memory import MemoryMeter
from ecosystem.health.model import SessionHealth
from ecosystem.health.outage import status_since
from ecosystem.health.probe import BUSY, OK, REFUSED, Saturated, probe_many, second_opinion
from ecosystem.heartbeat import Beat, Heartbeats, beats_path, fresh_for
from ecosystem.paths import StatePaths
from ecosystem.session import Session
from ecosystem.settings import Settings
from ecosystem.store import Store
from ecosystem.supctl.rpc import ProcessInfo

log = logging.getLogger("health")

SPOT_PERIOD = 300.0
"""Each beating runner is still asked /health about once in this many seconds: a loop
that beats while its HTTP server is gone must not go unnoticed."""

Running = tuple[Session, ProcessInfo, SessionHealth]
"""A session meant to run, its RUNNING process and its health record."""


@dataclass
class Restart:
    """A running session the checks say must be restarted (see Monitor._restart_for)."""

    running: Running
    reason: str
    kind: str
    kill: bool = False
    detail: dict[str, Any] = field(default_factory=dict)


class Liveness:
    def __init__(self, settings: Settings, rules: policy.Policy) -> None:
        self.hung = policy.HungTracker(settings.health_failures, settings.start_timeout)
        self.status_clock = policy.StatusClock()
        self.memory = MemoryMeter()
        self.saturated = Saturated()
        self.beats: Heartbeats | None = None
        self._spot = 0
        self.reconfigure(settings, rules)

    def reconfigure(self, settings: Settings, rules: policy.Policy) -> None:
        self.settings = settings
        self.policy = rules
        self.paths = StatePaths(settings.home)
        self.hung.failures = settings.health_failures
        self.hung.start_timeout = settings.start_timeout
        if self.beats is not None:
            self.beats.close()
        try:
            self.beats = Heartbeats(
                beats_path(settings.home), settings.base_port, settings.max_sessions
            )
        except OSError as exc:
            log.warning("no heartbeats (every runner is asked /health): %s", exc)
            self.beats = None

    def forget(self, name: str) -> None:
        """The session is no longer running as checked: its counts start again."""
        self.hung.forget(name)

    def _beating(self, running: list[Running]) -> dict[str, Beat]:
        """The recent heartbeats (of the current pid) of the runners in ``running``."""
        if self.beats is None:
            return {}
        fresh = {}
        now = time.monotonic()
        late = fresh_for(self.policy.interval)
        for s, info, _h in running:
            beat = self.beats.last(s.port)
            if beat is not None and beat.pid == info.pid and 0 <= now - beat.when <= late:
                fresh[s.name] = beat
        return fresh

    def _spot_check(self, running: list[Running]) -> set[str]:
        """This check's turn of beating runners asked /health all the same."""
        turns = max(1, round(SPOT_PERIOD / self.policy.interval))
        self._spot = (self._spot + 1) % turns
        return {s.name for i, (s, _, _) in enumerate(running) if i % turns == self._spot}

    def probe(self, running: list[Running], now: datetime, *, store_up: bool) -> list[Restart]:
        """Hang checks: the runners that failed too many in a row, to kill and restart.
        Also says which ports are saturated (the monitor's log)."""
        timeout = self.policy.probe_timeout
        beats = self._beating(running)
        beating = set(beats) - self._spot_check(running)
        asked = {s.name: s.port for s, _, _ in running if s.name not in beating}
        results = dict.fromkeys(beating, OK)
        probed = probe_many(self.settings.bind, asked, timeout)
        sockets = {name: self.paths.health_socket(name) for name in asked}
        results.update(second_opinion(probed, sockets, timeout))
        held = {name: beat.full for name, beat in beats.items() if beat.full}
        self.saturated.note({n for n, r in results.items() if r == BUSY} | set(held), held)
        out = []
        for run in running:
            s, info, _h = run
            pid, up = info.pid or 0, info.uptime_at(int(time.time())) or 0
            if not store_up and results[s.name] == REFUSED:
                continue  # a runner started during the outage waits for the store
            failed = self.hung.observe(s.name, pid, results[s.name], up, now)
            if self.hung.hung(s.name):
                how = "refused" if results[s.name] == REFUSED else "failed"
                reason = f"hung: /health {how} {failed} checks in a row"
                out.append(
                    Restart(run, reason, "hung", kill=True, detail={"failed_checks": failed})
                )
        return out

    def memory_and_stuck(
        self, running: list[Running], store: Store, now: datetime, *, store_up: bool
    ) -> list[Restart]:
        """The runners over the memory cap, or stuck in a status too long."""
        cap = self.policy.memory_cap_mb
        self.memory.prune({info.pid for _, info, _ in running if info.pid})
        out = []
        for run in running:
            s, info, _h = run
            pid = info.pid or 0
            if cap:
                pss = self.memory.pss_over(pid, cap * 1024 * 1024)
                reason = policy.memory_reason(self.policy, pss) if pss is not None else None
                if reason:
                    mb = round((pss or 0) / 2**20)
                    out.append(Restart(run, reason, "memory", detail={"pss_mb": mb, "cap_mb": cap}))
                    continue
            if not self.hung.up(s.name, pid) or not store_up:
                # not answering yet: the status in the store may still be the last runner's
                self.status_clock.forget(s.name)
                continue
            first_seen: Callable[[], datetime | None] = functools.partial(
                status_since, store, s, info
            )
            since = self.status_clock.observe(s.name, s.status, now, first_seen)
            reason = policy.stuck_reason(self.policy, s, since, now)
            if reason:
                detail: dict[str, Any] = {"status": str(s.status), "since": since.isoformat()}
                out.append(Restart(run, reason, "stuck", detail=detail))
        return out
