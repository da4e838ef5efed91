"""The runner's life: load settings, claim its port, run the connector, stop cleanly."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from ecosystem.backoff import Backoff
from ecosystem.errors import ConfigError, RunnerError, StoreError, ZapvisorError
from ecosystem.paths import StatePaths
from ecosystem.settings import Settings, read_runtime_settings
from ecosystem.states import RUNNER_RECYCLE_EXIT, Status
from ecosystem.store import Store, open_store
from runner.api import build_server
from runner.bot.bot import Bot
from runner.connectors import Connector, make_connector, sim_faults
from runner.connectors.base import RestartRunner
from runner.events import Events
from runner.lane import HealthLane
from runner.outbox import Outbox
from runner.state import LiveState, Reporter

log = logging.getLogger("runner")


class Runner:
    def __init__(self, settings: Settings, store: Store, name: str, port: int) -> None:
        self.settings = settings
        self.store = store
        self.name = name
        self.port = port
        self.paths = StatePaths(settings.home)
        session = store.get_session(name)
        if session.port != port:
            raise ConfigError(
                f"session {name} owns port {session.port} in the store but was started on "
                f"{port}; run `zapvisor doctor` to re-render supervisord's config"
            )
        self.session = session
        self.live = LiveState.from_session(session)
        self.reporter = Reporter(store, name, self.live)
        self.outbox = Outbox(
            store,
            name,
            self.paths,
            self.reporter.call,
            settings.webhook_delays,
            settings.webhook_timeout,
        )
        self.events = Events(self.reporter, self.outbox)
        self.bot = Bot(self)
        self.events.on_message = self.bot.on_message
        self.connector: Connector = make_connector(
            session.connector, name, self.paths.token_dir(name), self.events, settings
        )
        self._stop = asyncio.Event()
        self._exit_code = 0
        self._recycling = False

    def health(self) -> dict[str, Any]:
        """What `/health` answers (on the port and on the monitor's socket)."""
        return {
            "ok": True,
            "session": self.name,
            "status": str(self.live.status),
            "pid": os.getpid(),
            "uptime_seconds": round(time.monotonic() - self.live.started, 1),
        }

    async def serve(self) -> int:
        self.reporter.start()
        await self.reporter.update(
            status=Status.INITIALIZING, last_error=None, qr_payload=None, qr_expires_at=None
        )
        server = build_server(self)
        try:
            await server.start(self.settings.bind, self.port)
        except OSError as exc:
            reason = "is in use by another process" if exc.errno == errno.EADDRINUSE else str(exc)
            await self.reporter.update(status=Status.ERROR, last_error=f"port {self.port} {reason}")
            await self.reporter.close()
            raise RunnerError(
                f"cannot listen on {self.settings.bind}:{self.port}: {reason}"
            ) from None
        lane = HealthLane(self.paths.health_socket(self.name), self.health)
        await lane.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        log.info(
            "listening",
            extra={"event": "started", "port": self.port, "connector": self.connector.kind},
        )
        task = asyncio.create_task(self._run_connector(), name="connector")
        dispatcher = asyncio.create_task(self.outbox.run(), name="webhooks")
        dispatcher.add_done_callback(self._dispatcher_ended)
        faults = sim_faults.start(self)  # test/demo-only fault injection (sim sessions)
        await self._stop.wait()
        log.info("stopping", extra={"event": "stopping"})
        # Producers first, each awaited to its end: the connector, its own tasks, the
        # faults and the API's requests in flight. Only then is the outbox sealed and
        # flushed and are the store and webhook threads shut: an event accepted before
        # the stop reaches the outbox, and nothing reaches for a closed thread pool.
        producers = [t for t in (faults, task) if t is not None]
        for t in producers:
            t.cancel()
        await self.bot.close()
        try:
            await self.connector.close()
        except Exception:
            log.exception("connector close failed", extra={"event": "close_failed"})
        await _settle(producers, "connector")
        await server.close()
        await lane.close()
        # A recycled runner's successor takes over within a second: the status it
        # reported last stays (no disconnected/initializing flap in the webhooks).
        if self.live.status != Status.ERROR and not self._recycling:
            await self.reporter.update(
                status=Status.DISCONNECTED, qr_payload=None, qr_expires_at=None
            )
        # Events still on their way to the outbox get there; delivery resumes at the
        # next start, so a stop never waits on a slow receiver.
        self.outbox.seal()
        await self.outbox.flush()
        await _settle([dispatcher], "webhook dispatcher")
        await self.outbox.close()
        await self.reporter.close()
        return self._exit_code

    async def _run_connector(self) -> None:
        try:
            await self.connector.run()
        except asyncio.CancelledError:
            raise
        except RestartRunner as exc:
            self.recycle(str(exc))
        except ZapvisorError as exc:
            await self.events.failed(str(exc))
        except Exception as exc:
            log.exception("connector crashed", extra={"event": "crash"})
            await self.events.failed(f"connector crashed: {exc!r}")
            self._exit_code = 1
            self._stop.set()

    def _dispatcher_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._stop.is_set():
            return
        # A bug, not an outage (those are retried inside): exit, so supervisord starts a
        # fresh runner and the outbox resumes rather than silently stopping.
        exc = task.exception()
        if exc is None:
            return  # the store has no outbox: webhooks are off, the session runs on
        log.error("webhook dispatcher crashed: %r", exc, exc_info=exc, extra={"event": "crash"})
        self._exit_code = 1
        self._stop.set()

    def fail(self, exit_code: int) -> None:
        """Stop with a failure status (supervisord and the health monitor see a crash)."""
        self._exit_code = exit_code
        self._stop.set()

    def request_stop(self) -> None:
        self._stop.set()

    def recycle(self, why: str) -> None:
        """Stop as usual (store and outbox flushed) and exit with RUNNER_RECYCLE_EXIT:
        supervisord, or the health monitor, starts a fresh runner at once."""
        log.info("recycling the runner: %s", why, extra={"event": "recycle", "reason": why})
        self._recycling = True
        self._exit_code = RUNNER_RECYCLE_EXIT
        self._stop.set()


async def _settle(tasks: list[asyncio.Task[None]], what: str, timeout: float = 5.0) -> None:
    """Cancel ``tasks`` and wait for them to end, so none still runs (and schedules
    work) once the stop sequence moves on; their errors are logged, not lost.

    Cancelled again until they end: on Python 3.11 ``asyncio.wait_for`` swallows a
    cancellation that lands as its inner wait completes (the dispatcher woken by the
    very events the stop flushes), and the task runs on into the closed pools."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pending = set(tasks)
    while pending and loop.time() < deadline:
        for t in pending:
            t.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.1)
    if pending:
        log.warning("%s did not stop within %g s", what, timeout, extra={"event": "stop_slow"})
    for t in tasks:
        if t.done() and not t.cancelled() and (exc := t.exception()) is not None:
            log.error("%s failed: %r", what, exc, exc_info=exc, extra={"event": "crash"})


async def _connect(settings: Settings, name: str, port: int) -> Runner | None:
    """Open the store and build the runner, waiting out a store that is down.

    Exiting instead would make supervisord give up on the session (FATAL) during a
    database outage; waiting keeps it one step from serving again. Returns None when
    asked to stop while waiting.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    backoff = Backoff(1.0, 30.0)
    try:
        while True:
            store: Store | None = None
            try:
                store = await asyncio.to_thread(open_store, settings)
                await asyncio.to_thread(store.get_session, name)  # the store answers
                return Runner(settings, store, name, port)
            except StoreError as exc:
                if store is not None:
                    store.close()
                delay = backoff.next()
                log.warning(
                    "store unavailable, retrying in %.0f s: %s",
                    delay,
                    exc,
                    extra={"event": "store_retry"},
                )
            try:
                await asyncio.wait_for(stop.wait(), delay)
                return None
            except TimeoutError:
                pass
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def run(home: Path, name: str, port: int) -> int:
    settings = read_runtime_settings(StatePaths(home).runtime_env, home)
    runner = await _connect(settings, name, port)
    if runner is None:
        return 0
    try:
        code = await runner.serve()
    finally:
        runner.store.close()
    if runner.connector.leaves_thread:
        # Everything is flushed and closed; what is left is a native call blocking a
        # thread that nothing can end, which asyncio.run and the interpreter would wait
        # for forever (until supervisord's SIGKILL). Leave without joining it.
        log.info("leaving a blocked native call behind", extra={"event": "hard_exit"})
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
