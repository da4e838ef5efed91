"""The runner's life: load settings, claim its port, run the connector, stop cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import time
from typing import TYPE_CHECKING, Any

from ecosystem.errors import (
    ConfigError,
    NotThisHost,
    RunnerError,
    StoreError,
    StoreUnsupported,
    ZapvisorError,
)
from ecosystem.lease import ONE_HOST_LEASE_SECONDS, AuthKind, LeaseTiming
from ecosystem.paths import StatePaths
from ecosystem.session import Session
from ecosystem.settings import Settings
from ecosystem.shared_secrets import shared_secret
from ecosystem.states import RUNNER_RECYCLE_EXIT, Status
from ecosystem.store import SHARED_STORES, Store
from runner.api import build_server
from runner.connectors import Connector, ConnectorContext, make_connector
from runner.connectors.base import Inbound, RestartRunner
from runner.connectors.sim_server import SimServer
from runner.events import Events
from runner.http import Server
from runner.lane import HealthLane
from runner.lease import LeaseKeeper
from runner.outbox import Outbox
from runner.pulse import Pulse
from runner.settle import SETTLE_AFTER, settle, settle_heap
from runner.state import LiveState, Reporter

if TYPE_CHECKING:  # loaded by the first message or send that needs it
    from runner.bot.bot import Bot

log = logging.getLogger("runner")

FIRST_REPORT_WAIT = 2.0
"""Seconds a runner that took its lease waits for its first report to reach the
store before it listens (a store that is slow to answer does not hold it longer)."""


class Runner:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        name: str,
        port: int,
        session: Session | None = None,
    ) -> None:
        """``session``: the session's row as just read (startup.py read it to see the
        store answer), or None to read it here."""
        self.settings = settings
        self.store = store
        self.name = name
        self.port = port
        self.paths = StatePaths(settings.home)
        if session is None:
            session = store.get_session(name)
        self.session_read_at = time.monotonic()
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
        self.outbox.ride = self.reporter.ride
        self.events = Events(self.reporter, self.outbox)
        self._bot: Bot | None = None
        self.events.on_message = self._on_message
        one_host = store.kind not in SHARED_STORES
        ttl = max(settings.lease_seconds, ONE_HOST_LEASE_SECONDS if one_host else 0.0)
        self.lease = LeaseKeeper(
            store,
            name,
            settings.host_id,
            LeaseTiming(ttl),
            required=session.auth == AuthKind.STORE and not one_host,
        )
        self.sim_server: SimServer | None = None
        self.connector: Connector = self._new_connector()
        self._stop = asyncio.Event()
        self._exit_code = 0
        self._server: Server | None = None
        self.pulse = Pulse(settings, port, self._stop.is_set, self._turned_away)
        self.events.on_activity = self.pulse.with_work
        self._recycling = False

    @property
    def bot(self) -> Bot:
        """The session's bot, made by the first inbound message or API send that
        needs it: a session that never gets one never imports it (nor its pacing,
        zoneinfo, providers)."""
        if self._bot is None:
            from runner.bot.bot import Bot

            self._bot = Bot(self)
        return self._bot

    def _on_message(self, message: Inbound) -> None:
        self.bot.on_message(message)

    def health(self) -> dict[str, Any]:
        """What `/health` answers (on the port and on the monitor's socket)."""
        return {
            "ok": True,
            "session": self.name,
            "status": str(self.live.status),
            "pid": os.getpid(),
            "uptime_seconds": round(time.monotonic() - self.live.started, 1),
            "lease": self.lease.describe(),
        }

    def _new_connector(self) -> Connector:
        """A fresh connector (one per stretch of holding the lease)."""
        kind = self.session.connector
        if kind == "sim" and self.sim_server is None:
            self.sim_server = SimServer.for_runner(self.settings, self.store)
        context = ConnectorContext(
            auth=self.session.auth,
            store=self.store,
            call=self.reporter.call,
            host=self.settings.host_id,
            may_drive=self.lease.may_drive,
            epoch=self.lease.fence.epoch if self.lease.fence else None,
            sim_server=self.sim_server,
        )
        return make_connector(
            kind, self.name, self.paths.token_dir(self.name), self.events, self.settings, context
        )

    async def serve(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        if self.lease.required and self.session.host != self.settings.host_id:
            # moved away while this program was still here: its program goes at the
            # next apply; starting it again does nothing
            log.warning(
                "session %s runs on host %s now: not starting here",
                self.name,
                self.session.host,
                extra={"event": "not_this_host"},
            )
            return 0
        self.lease.on_lost = self._lease_lost
        self.reporter.on_lost = self.lease.mark_lost
        if not self.lease.required:
            self.lease.go_without(self._stop)
            await self._report_start()
        # a lease free to take is taken before /health answers, so whoever waits for
        # /health (a create, a boot) then reads this runner's status, not the last one's
        ready = not self.lease.required or await self._take_lease_now()
        server = self._server = build_server(self)
        try:
            await server.start(self.settings.bind, self.port)
        except OSError as exc:
            reason = "is in use by another process" if exc.errno == errno.EADDRINUSE else str(exc)
            if self.lease.held.is_set():  # the row is this runner's to write
                await self.reporter.update(
                    status=Status.ERROR, last_error=f"port {self.port} {reason}"
                )
            await self.reporter.close()
            await self.lease.close()
            raise RunnerError(
                f"cannot listen on {self.settings.bind}:{self.port}: {reason}"
            ) from None
        lane = HealthLane(self.paths.health_socket(self.name), self.health)
        await lane.start()
        self.pulse.beat()
        log.info(
            "listening",
            extra={"event": "started", "port": self.port, "connector": self.connector.kind},
        )
        # after the first /health, not before it: the collection takes ~8 ms, which a
        # create or a restart waiting for that answer would wait too
        asyncio.get_running_loop().call_later(SETTLE_AFTER, settle_heap)
        if not ready and not await self._wait_for_lease():
            await server.close()
            await lane.close()
            await self.lease.close()
            await self.reporter.close()
            if self.sim_server is not None:
                self.sim_server.shutdown()
            return 0
        task = asyncio.create_task(self._drive(), name="connector")
        dispatcher = asyncio.create_task(self.outbox.run(), name="webhooks")
        dispatcher.add_done_callback(self._dispatcher_ended)
        faults = self._start_faults()  # test/demo-only fault injection (sim sessions)
        await self._stop.wait()
        log.info("stopping", extra={"event": "stopping"})
        # Producers first, each awaited to its end: the connector, its own tasks, the
        # faults and the API's requests in flight. Only then is the outbox sealed and
        # flushed and are the store and webhook threads shut: an event accepted before
        # the stop reaches the outbox, and nothing reaches for a closed thread pool.
        producers = [t for t in (faults, task) if t is not None]
        for t in producers:
            t.cancel()
        if self._bot is not None:
            await self._bot.close()
        try:
            await self.connector.close()
        except Exception:
            log.exception("connector close failed", extra={"event": "close_failed"})
        await settle(producers, "connector")
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
        await settle([dispatcher], "webhook dispatcher")
        await self.outbox.close()
        await self.reporter.close()
        if self.lease.lost.is_set():
            await self.lease.say_lost(os.getpid())
        await self.lease.close()
        if self.sim_server is not None:
            self.sim_server.shutdown()
        return self._exit_code

    def _start_faults(self) -> asyncio.Task[None] | None:
        """The sim faults of the session's timing_config (runner/connectors/sim_faults.py),
        imported only for a sim session whose config holds some."""
        if self.connector.kind != "sim" or not self.session.timing_config.get("sim"):
            return None
        from runner.connectors import sim_faults

        return sim_faults.start(self)

    async def _wait_for_lease(self) -> bool:
        """Until this host holds the lease (answering /health meanwhile, which says so);
        False when asked to stop first, or the session moved to another host."""
        log.info(
            "waiting for the lease before connecting to WhatsApp",
            extra={"event": "lease_wait"},
        )
        try:
            if not await self.lease.acquire(self._stop):
                return False
        except NotThisHost as exc:
            log.warning("%s: not starting here", exc, extra={"event": "not_this_host"})
            return False
        await self._leased()
        return True

    async def _take_lease_now(self) -> bool:
        """One try at the lease before listening (the wait after it says why not)."""
        with contextlib.suppress(NotThisHost):
            if await self.lease.acquire(self._stop, once=True):
                await self._leased()
                return True
        return False

    async def _leased(self) -> None:
        self.connector = self._new_connector()  # with the lease's epoch
        self.lease.start()
        await self._report_start()

    async def _report_start(self) -> None:
        """The first writes of a runner that may write the session's row.

        They reach the store before the port answers: whoever waited for this runner's
        /health (a create, a restart, a `list` that started supervisord) then reads
        what this runner says, not what the one before it last wrote (one row write,
        ~1 ms on SQLite; a store slow to answer holds it FIRST_REPORT_WAIT at most)."""
        self.reporter.start()
        if self.session.auth == AuthKind.STORE:
            await self._share_webhook_secret()
        await self.reporter.update(
            status=Status.INITIALIZING, last_error=None, qr_payload=None, qr_expires_at=None
        )
        await self.reporter.flush(FIRST_REPORT_WAIT)

    async def _drive(self) -> None:
        """Run the connector while the lease is held; let go of WhatsApp the moment it
        lapses, and connect again (a fresh connector) if a renewal gives it back."""
        while True:
            await self.lease.held.wait()
            if self.lease.lost.is_set():
                return
            run = asyncio.create_task(self._run_connector(), name="connector-run")
            lapse = asyncio.create_task(self.lease.lapsed.wait(), name="lease-lapse")
            try:
                await asyncio.wait({run, lapse}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                lapse.cancel()
                if not run.done():
                    run.cancel()
            if not self.lease.lapsed.is_set():
                await settle([run], "connector")
                return  # the connector ended by itself (a crash already asked to stop)
            try:
                await self.connector.close()
            except Exception:
                log.exception("connector close failed", extra={"event": "close_failed"})
            await settle([run], "connector")
            if self.lease.lost.is_set():
                return
            await self.events.disconnected(
                Status.DISCONNECTED,
                "the store did not confirm this host's lease in time: disconnected from "
                "WhatsApp until it does (another host may take the session over)",
            )
            self.connector = self._new_connector()

    async def _share_webhook_secret(self) -> None:
        """Sign with the fleet's secret for this session (kept in the store, so it is
        the same on every host it moves to); the file's when the store cannot say."""
        try:
            await self.reporter.call(shared_secret, self.store, self.paths, self.name)
        except (StoreUnsupported, StoreError) as exc:
            log.warning(
                "webhook secret not shared through the store: %s", exc, extra={"event": "secret"}
            )

    def _lease_lost(self, reason: str) -> None:
        """Another host holds the session now (or a newer runner here): stop, never
        reconnect."""
        self._stop.set()

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

    def _turned_away(self) -> int:
        return self._server.full() if self._server is not None else 0

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
