"""The SSH layer: one long-lived asyncssh connection per host, reused for every channel.

Keepalives every KEEPALIVE_INTERVAL seconds close a connection whose host stopped
answering once KEEPALIVE_COUNT_MAX of them go unanswered, so a dead host is known within
about 6 s and its callers fail fast instead of hanging; the next call connects again
(within CONNECT_TIMEOUT). How one connection is made and checked is connect.py.

Everything here is asyncio and runs on one event loop; sync callers submit to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import time
import weakref
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import asyncssh

from ecosystem.errors import HostError, HostUnreachable
from ecosystem.fleet.connect import (
    CONNECT_TIMEOUT,
    KEEPALIVE_COUNT_MAX,
    KEEPALIVE_INTERVAL,
    Endpoint,
    connect,
)
from ecosystem.fleet.knownhosts import KeyPolicy
from ecosystem.fleet.records import HostRecord
from ecosystem.paths import StatePaths
from ecosystem.session import utcnow

if TYPE_CHECKING:
    from asyncssh import SSHClientConnection, SSHClientProcess

MAX_CHANNELS = 8
"""Channels open at once on one connection: OpenSSH's MaxSessions is 10 by default."""

__all__ = [
    "CONNECT_TIMEOUT",
    "KEEPALIVE_COUNT_MAX",
    "KEEPALIVE_INTERVAL",
    "MAX_CHANNELS",
    "AgentChannel",
    "Endpoint",
    "SSHPool",
    "open_agent",
    "pool_for",
]


def remote_command(zapvisor_path: str, argv: Sequence[str]) -> str:
    """The command line the SSH user's shell runs: every word quoted."""
    return shlex.join([zapvisor_path, *argv])


@dataclass
class AgentChannel:
    """One channel running a long-lived process on the host: byte streams in and out
    (JSON lines for `zapvisor agent --stdio`)."""

    process: SSHClientProcess[bytes]

    @property
    def reader(self) -> asyncssh.SSHReader[bytes]:
        return self.process.stdout

    @property
    def writer(self) -> asyncssh.SSHWriter[bytes]:
        return self.process.stdin

    @property
    def stderr(self) -> asyncssh.SSHReader[bytes]:
        return self.process.stderr

    def close(self) -> None:
        self.process.close()

    async def wait_closed(self) -> None:
        await self.process.wait_closed()


@dataclass
class RemoteResult:
    exit_status: int
    stdout: str
    stderr: str


@dataclass
class LinkState:
    """What the control side knows of one host's connection."""

    up: bool = False
    since: datetime | None = None
    """When it came up, or went down."""
    error: str | None = None
    """Why it is down."""


@dataclass
class _Link:
    conn: SSHClientConnection
    channels: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class SSHPool:
    """The control side's connections, one per host name, on one event loop."""

    def __init__(self, paths: StatePaths, *, keepalive_interval: float = KEEPALIVE_INTERVAL):
        self.paths = paths
        self.keepalive_interval = keepalive_interval
        self._links: dict[str, _Link] = {}
        self._connecting: dict[str, asyncio.Lock] = {}
        self.states: dict[str, LinkState] = {}

    def _mark(self, name: str, up: bool, error: str | None = None) -> None:
        state = self.states.setdefault(name, LinkState())
        if state.up != up or state.since is None:
            state.since = utcnow()
        state.up, state.error = up, error

    async def connection(
        self,
        endpoint: Endpoint,
        *,
        timeout: float = CONNECT_TIMEOUT,
        policy: KeyPolicy | None = None,
        first_contact_flags: bool = False,
        remember: bool = True,
    ) -> SSHClientConnection:
        """The host's connection, made now if there is none or it died (``policy`` and
        the rest as for :func:`~ecosystem.fleet.connect.connect`)."""
        lock = self._connecting.setdefault(endpoint.name, asyncio.Lock())
        async with lock:
            link = self._links.get(endpoint.name)
            if link is not None and not link.conn.is_closed():
                return link.conn

            def lost(exc: Exception | None, name: str = endpoint.name) -> None:
                gone = self._links.pop(name, None)
                if gone is not None:
                    self._mark(name, False, str(exc) if exc else "connection closed")

            try:
                conn = await connect(
                    endpoint,
                    self.paths,
                    policy=policy,
                    first_contact_flags=first_contact_flags,
                    timeout=timeout,
                    keepalive_interval=self.keepalive_interval,
                    on_lost=lost,
                    remember=remember,
                )
            except HostError as exc:
                self._mark(endpoint.name, False, str(exc))
                raise
            self._links[endpoint.name] = _Link(conn)
            self._mark(endpoint.name, True)
            return conn

    @contextlib.asynccontextmanager
    async def _slot(self, endpoint: Endpoint, timeout: float) -> AsyncIterator[_Link]:
        conn = await self.connection(endpoint, timeout=timeout)
        link = self._links.get(endpoint.name)
        if link is None or link.conn is not conn:
            raise HostUnreachable(f"the SSH connection to {endpoint.name} closed")
        if link.channels >= MAX_CHANNELS:
            raise HostError(
                f"{endpoint.name} already has {MAX_CHANNELS} channels open on its SSH "
                "connection: wait for one to end"
            )
        link.channels += 1
        try:
            yield link
        finally:
            link.channels -= 1

    async def run(
        self,
        endpoint: Endpoint,
        command: str,
        *,
        timeout: float,
        stdin: str | None = None,
    ) -> RemoteResult:
        """Run one command through the SSH user's shell and collect its output."""
        try:
            async with self._slot(endpoint, timeout) as link:
                done = await link.conn.run(
                    command, input=stdin, check=False, timeout=timeout, errors="replace"
                )
        except asyncssh.TimeoutError:
            raise HostUnreachable(
                f"{endpoint.name} did not finish `{command}` within {timeout:g} s"
            ) from None
        except (asyncssh.Error, OSError) as exc:
            raise self._broken(endpoint, exc) from None
        status = done.exit_status if done.exit_status is not None else 255
        return RemoteResult(status, str(done.stdout or ""), str(done.stderr or ""))

    async def open_process(
        self, endpoint: Endpoint, command: str, *, timeout: float
    ) -> AgentChannel:
        """A long-lived process on the host, its stdin/stdout as byte streams. Its
        channel counts against MAX_CHANNELS until it closes."""
        async with self._slot(endpoint, timeout) as link:
            try:
                process = await asyncio.wait_for(
                    link.conn.create_process(command, encoding=None), timeout
                )
            except TimeoutError:
                raise HostUnreachable(
                    f"{endpoint.name} did not open a channel within {timeout:g} s"
                ) from None
            except (asyncssh.Error, OSError) as exc:
                raise self._broken(endpoint, exc) from None
            link.channels += 1  # held until the process's channel closes

        async def release() -> None:
            with contextlib.suppress(Exception):
                await process.wait_closed()
            link.channels -= 1

        asyncio.get_running_loop().create_task(release())
        return AgentChannel(process)

    async def open_agent(self, host: HostRecord, *, timeout: float) -> AgentChannel:
        """`zapvisor agent --stdio` on the host (the fleet's JSON-lines protocol)."""
        return await self.open_process(
            Endpoint.of(host),
            remote_command(host.zapvisor_path, ["agent", "--stdio"]),
            timeout=timeout,
        )

    @contextlib.asynccontextmanager
    async def sftp(
        self, endpoint: Endpoint, *, timeout: float
    ) -> AsyncIterator[asyncssh.SFTPClient]:
        async with self._slot(endpoint, timeout) as link:
            try:
                client = await asyncio.wait_for(link.conn.start_sftp_client(), timeout)
            except TimeoutError:
                raise HostUnreachable(
                    f"{endpoint.name} did not start SFTP in {timeout:g} s"
                ) from None
            except (asyncssh.Error, OSError) as exc:
                raise self._broken(endpoint, exc) from None
            try:
                yield client
            finally:
                client.exit()

    async def ping(self, endpoint: Endpoint, *, timeout: float = CONNECT_TIMEOUT) -> float:
        """Seconds for one round trip on the host's connection (an SSH keepalive
        request: no process on the host)."""
        conn = await self.connection(endpoint, timeout=timeout)
        started = time.perf_counter()
        request = getattr(conn, "_make_global_request", None)
        try:
            if request is not None:
                await asyncio.wait_for(request(b"keepalive@openssh.com"), timeout)
            else:  # pragma: no cover - an asyncssh without it: a process round trip
                await asyncio.wait_for(conn.run("true", check=False), timeout)
        except TimeoutError:
            raise HostUnreachable(f"{endpoint.name} did not answer within {timeout:g} s") from None
        return time.perf_counter() - started

    def _broken(self, endpoint: Endpoint, exc: BaseException) -> HostError:
        if isinstance(exc, asyncssh.ChannelOpenError):
            return HostError(f"{endpoint.name} refused a new SSH channel: {exc.reason}")
        reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        self._mark(endpoint.name, False, reason)
        return HostUnreachable(f"the SSH connection to {endpoint.name} broke: {reason}")

    async def drop(self, name: str) -> None:
        link = self._links.pop(name, None)
        if link is not None:
            link.conn.close()
            with contextlib.suppress(Exception):
                await link.conn.wait_closed()

    async def close(self) -> None:
        for name in list(self._links):
            await self.drop(name)


_POOLS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Path, SSHPool]] = (
    weakref.WeakKeyDictionary()
)


def pool_for(paths: StatePaths) -> SSHPool:
    """The running loop's pool for this state dir (a connection belongs to one loop)."""
    loop = asyncio.get_running_loop()
    pools = _POOLS.setdefault(loop, {})
    if paths.home not in pools:
        pools[paths.home] = SSHPool(paths)
    return pools[paths.home]


async def open_agent(host: HostRecord, paths: StatePaths, *, timeout: float) -> AgentChannel:
    """The fleet contract's entry point: a channel to `zapvisor agent --stdio` on
    ``host``, on the host's one connection (made or reused)."""
    return await pool_for(paths).open_agent(host, timeout=timeout)
