"""The monitor as a supervisord event listener.

supervisord's listener protocol is synchronous: it sends the next event only after the
listener answered the previous one, and queues events meanwhile (``buffer_size``).
So the protocol thread does nothing but read an event, queue it and answer OK at once;
a worker thread runs the passes. A slow pass (a probe timing out, a store write
waiting) therefore never holds an event back, and a burst of state changes at boot
is answered as fast as supervisord sends it.

Checks run every ZAPVISOR_HEALTH_INTERVAL seconds on the worker's own clock (so tests
and small hosts may check more often than supervisord's fixed TICK_5). The monitor
does not subscribe to TICK_5: each tick was a round trip on the protocol pipe, waking
supervisord, both of the monitor's threads, for nothing the worker's clock does not
already do (and supervisord's loop sleeps while no listener waits for a tick,
supctl/quietloop.py). PROCESS_STATE events for a session's runner that went down run
an immediate `react` pass, so a crashed runner is restarted within milliseconds
rather than at the next check.
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ecosystem.backoff import Backoff
from ecosystem.errors import StoreError, ZapvisorError
from ecosystem.health.envwatch import RuntimeEnv
from ecosystem.health.failover import Failover, Heartbeat, fleet_supported
from ecosystem.health.monitor import Monitor
from ecosystem.health.notify import Notifier
from ecosystem.health.proctable import RESYNC_SECONDS
from ecosystem.health.volatile import health_gap, keeps_health, volatile
from ecosystem.jsonlog import JsonFormatter
from ecosystem.names import session_from_program
from ecosystem.paths import StatePaths
from ecosystem.settings import Settings
from ecosystem.store import open_store
from ecosystem.supctl import daemon

log = logging.getLogger("health")

WAKE_STATES = frozenset({"PROCESS_STATE_EXITED", "PROCESS_STATE_FATAL", "PROCESS_STATE_STOPPED"})
MAX_FAILED_PASSES = 20
"""Unexpected errors in a row after which the monitor exits (supervisord restarts it)."""


@dataclass(frozen=True)
class Event:
    name: str
    headers: dict[str, str]

    @property
    def wakes(self) -> bool:
        """A session's runner went down: react now rather than at the next tick."""
        program = self.headers.get("processname", "")
        return self.name in WAKE_STATES and session_from_program(program) is not None


EOF_EVENT = Event("EOF", {})


def configure_logging() -> None:
    """stderr only: stdout is the protocol channel, one stray byte there breaks it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def claim_stdout() -> IO[str]:
    """Keep stdout for the protocol alone and point fd 1 at stderr.

    One stray byte on stdout breaks the listener protocol: supervisord drops the
    listener's state and the monitor stops receiving events. Logging goes to stderr, but
    a print() in a library, a C extension writing to fd 1, or a child process inheriting
    it would not; after this they all land in the monitor's stderr log instead."""
    sys.stdout.flush()
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8", closefd=True)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return protocol


READY = "READY\n"
"""What a listener says when it can take an event (supervisor's childutils says the
same; that module imports supervisor's XML-RPC, HTTP and XML code, ~4 MB of the
monitor, for these two lines)."""
OK = "RESULT 2\nOK"


def headers(line: str) -> dict[str, str]:
    """supervisord's ``key:value key:value`` line as a dict."""
    return dict(word.partition(":")[::2] for word in line.split())


def serve_protocol(
    stdin: IO[bytes], stdout: IO[str], events: queue.Queue[Event], alive: Any
) -> int:
    """Answer supervisord until it goes away (EOF: 0) or the worker died (1)."""
    while True:
        stdout.write(READY)
        stdout.flush()
        line = stdin.readline()
        if not line:
            events.put(EOF_EVENT)
            return 0
        head = headers(line.decode("utf-8", "replace"))
        payload = stdin.read(int(head.get("len", "0"))).decode("utf-8", "replace")
        body = headers(payload.split("\n", 1)[0]) if payload.strip() else {}
        events.put(Event(head.get("eventname", "?"), body))
        stdout.write(OK)
        stdout.flush()
        if not alive():
            return 1


Built = tuple[Monitor, Notifier, Callable[[], bool] | None]


class Worker(threading.Thread):
    def __init__(
        self,
        setup: Callable[[], Built],
        events: queue.Queue[Event],
        runtime: RuntimeEnv,
    ) -> None:
        super().__init__(name="health-worker", daemon=True)
        self.setup = setup
        self.events = events
        self.runtime = runtime
        self._skipped: tuple[str, float] = ("", 0.0)

    def _build(self) -> bool:
        """Build the monitor, waiting out a store that does not answer (exiting instead
        would have supervisord restart the monitor in a loop, then give up on it:
        FATAL). False at EOF."""
        backoff = Backoff(1.0, 30.0)
        while True:
            try:
                self.monitor, notifier, self.store_ready = self.setup()
                notifier.start()
                return True
            except StoreError as exc:
                delay = backoff.next()
                log.error("the store does not answer; retrying in %g s: %s", delay, exc)
            deadline = time.monotonic() + delay
            while (left := deadline - time.monotonic()) > 0:
                try:
                    if self.events.get(timeout=left) == EOF_EVENT:
                        return False
                except queue.Empty:
                    break

    def _skip(self, exc: ZapvisorError) -> None:
        """Say a pass was skipped, once a minute for the same reason (a store down for
        an hour must not write 720 lines)."""
        text, at = self._skipped
        now = time.monotonic()
        if str(exc) != text or now - at >= 60:
            log.warning("health pass skipped: %s", exc)
            self._skipped = (str(exc), now)

    def run(self) -> None:
        if not self._build():
            return
        self._show_problem()
        next_check = time.monotonic()
        failures = 0
        while True:
            wake = self._wait(next_check)
            if wake is None:
                return
            if not self._reload_settings():
                return  # supervisord starts the monitor again, onto the new store
            try:
                if time.monotonic() >= next_check:
                    began = time.monotonic()
                    self.monitor.check()
                    next_check = began + self.monitor.policy.interval
                    if self.store_ready is not None and self.store_ready():
                        log.warning("the store keeps health records now: moving onto it")
                        return
                elif wake or self._restart_due():
                    self.monitor.react()
                failures = 0
            except ZapvisorError as exc:
                self._skip(exc)
            except Exception:
                failures += 1
                log.exception("health pass failed")
                if failures >= MAX_FAILED_PASSES:
                    return

    def _wait(self, next_check: float) -> bool | None:
        """Block until an event, the next check or a due restart; True when a session's
        runner went down, None at EOF."""
        timeout = next_check - time.monotonic()
        due = self.monitor.next_due
        if due is not None:
            timeout = min(timeout, (due - self.monitor.clock()).total_seconds())
        batch = []
        try:
            batch.append(self.events.get(timeout=max(0.0, timeout)))
            while True:
                batch.append(self.events.get_nowait())
        except queue.Empty:
            pass
        if EOF_EVENT in batch:
            return None
        for event in batch:
            self.monitor.procs.apply(event.name, event.headers)
            if event.name.startswith("PROCESS_STATE"):
                self.monitor.alerts_due = True  # a FATAL runner is an alert
        return any(e.wakes for e in batch)

    def _restart_due(self) -> bool:
        due = self.monitor.next_due
        return due is not None and due <= self.monitor.clock()

    def _reload_settings(self) -> bool:
        """The commands that change what runs rewrite runtime.env; thresholds changed
        there apply without restarting the monitor. A store changed there cannot (the
        monitor, its heartbeat and its claims hold one, opened at its start): False,
        and the monitor exits so that supervisord starts it again, on that store, as
        the runners started since already are (else this host would beat into the
        old store while its runners renew their leases in the new one)."""
        if not self.runtime.changed():
            return True
        settings = self.runtime.load()  # the last good ones when the file is bad
        self._show_problem()
        if settings is self.monitor.settings:
            return True
        if store_of(settings) != store_of(self.monitor.settings):
            log.warning("the store changed in %s: restarting onto it", self.runtime.env_file)
            return False
        self.monitor.reconfigure(settings)
        log.info("settings reloaded from %s", self.runtime.env_file)
        return True

    def _show_problem(self) -> None:
        problem = self.runtime.problem
        self.monitor.settings_problem = problem.to_json() if problem else None


def store_of(settings: Settings) -> tuple[str, ...]:
    """What selects the store a process opens (open_store), secrets included: compared,
    never shown."""
    secrets = (settings.database_url, settings.supabase_service_role_key)
    return (
        settings.store_kind,
        str(settings.supabase_url or ""),
        *(s.get_secret_value() if s is not None else "" for s in secrets),
    )


def _alert_url(monitor: Monitor) -> str | None:
    url = monitor.settings.alert_webhook_url
    return url.get_secret_value() if url is not None else None


def build(settings: Settings) -> Built:
    """The monitor, its alert notifier, and (when the store cannot keep the monitor's
    records yet) a probe that says when it can: the worker then exits, and supervisord
    starts the monitor again, onto the store."""
    paths = StatePaths(settings.home)
    store = open_store(settings)
    probe: Callable[[], bool] | None = None
    gap = health_gap(store)
    if gap is not None:
        log.warning(
            "%s: restart counts, parking and alerts live in the monitor's memory until "
            "it can keep them there",
            gap,
        )
        probe = functools.partial(keeps_health, store)
        store = volatile(store)
    sup = daemon.client(paths)
    monitor = Monitor(settings, store, sup)
    if fleet_supported(store):
        monitor.failover = Failover(settings, store, sup)
        Heartbeat(store, lambda: monitor.settings, monitor.started_at).start()
    monitor.procs.resync = RESYNC_SECONDS  # fed by the events from here on
    notifier = Notifier(store, settings.host_id, lambda: _alert_url(monitor), monitor.clock)
    monitor.notifier = notifier
    return monitor, notifier, probe


READER_GRACE = 1.0
"""How long the end of a worker that saw EOF waits for the protocol thread's return."""


def main(home: Path) -> int:
    configure_logging()
    protocol = claim_stdout()
    runtime = RuntimeEnv(StatePaths(home).runtime_env, home)
    runtime.load()  # a bad file is said and shown, not fatal (envwatch.py)
    log.info("health monitor started")
    events: queue.Queue[Event] = queue.Queue()
    worker = Worker(lambda: build(runtime.current()), events, runtime)
    worker.start()
    # The protocol is read on a thread of its own and the worker's end is awaited here:
    # at rest no event comes (no TICK_5), so a worker that stopped (the store changed,
    # too many failed passes) must end the process itself, not at the next event.
    answered: list[int] = []
    reader = threading.Thread(
        target=lambda: answered.append(
            serve_protocol(sys.stdin.buffer, protocol, events, worker.is_alive)
        ),
        name="health-protocol",
        daemon=True,
    )
    reader.start()
    worker.join()
    reader.join(timeout=READER_GRACE)  # at EOF it has returned, or is about to
    code = answered[0] if answered else 1
    if code:
        log.error("the health worker stopped; exiting so supervisord restarts the monitor")
    return code
