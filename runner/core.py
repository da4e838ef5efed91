"""The runner's life: load settings, claim its port, run the connector, stop cleanly."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
from datetime import datetime
from pathlib import Path

from dotenv import dotenv_values

from ecosystem.errors import ConfigError, RunnerError, ZapvisorError
from ecosystem.models import utcnow
from ecosystem.paths import StatePaths
from ecosystem.settings import Settings, settings_from_vars
from ecosystem.states import Status
from ecosystem.store import Store, open_store
from runner.api import build_server
from runner.connectors import Connector, make_connector, sim_faults
from runner.state import LiveState, Reporter

log = logging.getLogger("runner")


def load_runtime_settings(home: Path) -> Settings:
    """Settings exactly as zapvisor last wrote them to `runtime.env`; nothing from the
    environment supervisord happened to start with."""
    env_file = StatePaths(home).runtime_env
    if not env_file.is_file():
        raise ConfigError(f"{env_file} is missing: run any zapvisor command to write it")
    values = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
    values.setdefault("ZAPVISOR_HOME", str(home))
    return settings_from_vars(values, where=str(env_file))


class Events:
    """Connector events → live state + store (the ConnectorEvents protocol)."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter

    async def qr(self, payload: str, expires_at: datetime) -> None:
        log.info("new QR code", extra={"event": "qr", "expires_at": expires_at.isoformat()})
        await self.reporter.update(
            status=Status.WAITING_SCAN, qr_payload=payload, qr_expires_at=expires_at
        )

    async def connected(self, phone: str) -> None:
        await self.reporter.update(
            status=Status.CONNECTED,
            phone=phone,
            connected_at=utcnow(),
            qr_payload=None,
            qr_expires_at=None,
            last_error=None,
        )

    async def disconnected(self, status: Status, reason: str) -> None:
        await self.reporter.update(status=status, last_error=reason or None, qr_payload=None)

    async def failed(self, message: str) -> None:
        log.error("%s", message, extra={"event": "error"})
        await self.reporter.update(status=Status.ERROR, last_error=message, qr_payload=None)

    async def logged_out(self) -> None:
        log.info("logged out", extra={"event": "logged_out"})
        await self.reporter.update(
            status=Status.DISCONNECTED, phone=None, connected_at=None, qr_payload=None
        )


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
        self.connector: Connector = make_connector(
            session.connector, name, self.paths.token_dir(name), Events(self.reporter), settings
        )
        self._stop = asyncio.Event()
        self._exit_code = 0

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
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        log.info(
            "listening",
            extra={"event": "started", "port": self.port, "connector": self.connector.kind},
        )
        task = asyncio.create_task(self._run_connector(), name="connector")
        faults = sim_faults.start(self)  # test/demo-only fault injection (sim sessions)
        await self._stop.wait()
        if faults is not None:
            faults.cancel()
        log.info("stopping", extra={"event": "stopping"})
        task.cancel()
        try:
            await self.connector.close()
        except Exception:
            log.exception("connector close failed", extra={"event": "close_failed"})
        await server.close()
        if self.live.status != Status.ERROR:
            await self.reporter.update(status=Status.DISCONNECTED, qr_payload=None)
        await self.reporter.close()
        return self._exit_code

    async def _run_connector(self) -> None:
        try:
            await self.connector.run()
        except asyncio.CancelledError:
            raise
        except ZapvisorError as exc:
            await self.connector.events.failed(str(exc))
        except Exception as exc:
            log.exception("connector crashed", extra={"event": "crash"})
            await self.connector.events.failed(f"connector crashed: {exc!r}")
            self._exit_code = 1
            self._stop.set()

    def fail(self, exit_code: int) -> None:
        """Stop with a failure status (supervisord and the health monitor see a crash)."""
        self._exit_code = exit_code
        self._stop.set()

    def request_stop(self) -> None:
        self._stop.set()


async def run(home: Path, name: str, port: int) -> int:
    settings = load_runtime_settings(home)
    store = open_store(settings)
    try:
        runner = Runner(settings, store, name, port)
        return await runner.serve()
    finally:
        store.close()
