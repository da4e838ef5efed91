"""The control side's links to the fleet's hosts: one agent per host, opened when first
needed, reused by every call, dropped when it stops answering (and opened again by the
next call), and what is known of each host's reachability."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from ecosystem.errors import HostUnreachable, ProtocolError, ZapvisorError
from ecosystem.fleet.client import AgentClient, Reader, Writer
from ecosystem.fleet.loop import FleetLoop
from ecosystem.fleet.protocol import Hello
from ecosystem.session import utcnow

CONNECT_TIMEOUT = 10.0
"""Seconds to reach a host and start its agent (connect, log in, open the channel)."""
HELLO_TIMEOUT = 60.0
"""Seconds a started agent has to say hello: a Python start with the core's imports,
which a host under heavy load stretches well past CONNECT_TIMEOUT. Waiting this long
hides no dead host: the SSH keepalives close a silent host's connection (and so the
agent's channel) within seconds, and every caller keeps its own, shorter, timeout (a
live view's is HOST_TIMEOUT), while the link goes on opening for the next call."""


@dataclass
class AgentStreams:
    """An agent's stdin/stdout, however they were opened, and how to close them."""

    reader: Reader
    writer: Writer
    close: Callable[[], Awaitable[None] | None]
    why: Callable[[], Awaitable[ZapvisorError | None]] | None = None
    """Why the agent ended, once it has (its exit status, its last stderr lines): said
    instead of a bare "closed before saying hello" when it dies at start (not
    installed there any more, a bad setting on that host)."""


Opener = Callable[[str, float], Awaitable[AgentStreams]]
"""(host name, timeout) → the streams of an agent running on that host."""


@dataclass(frozen=True)
class Reach:
    """What the control side knows of a host's reachability."""

    host: str
    reachable: bool | None = None
    """None until a first call ended."""
    since: datetime | None = None
    """When it stopped answering (None while it answers)."""
    error: str | None = None
    latency_ms: float | None = None
    """The last call's round trip."""
    version: str | None = None
    """The zapvisor version its agent runs."""


class HostLinks:
    """Every link of this control side, on one background loop."""

    def __init__(
        self,
        opener: Opener,
        *,
        hosts: Callable[[], list[str]],
        connect_timeout: float = CONNECT_TIMEOUT,
        hello_timeout: float = HELLO_TIMEOUT,
    ) -> None:
        self.opener = opener
        self.hosts = hosts
        """The other hosts of the fleet, by name (the store's hosts table)."""
        self.connect_timeout = connect_timeout
        self.hello_timeout = hello_timeout
        self.loop = FleetLoop()
        self._clients: dict[str, AgentClient] = {}
        self._opening: dict[str, asyncio.Task[AgentClient]] = {}
        self._reach: dict[str, Reach] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False
        self.calls: Counter[tuple[str, str]] = Counter()
        """Calls made, by (host, method): what a refresh costs, for tests and benchmarks."""

    # -- what is known -------------------------------------------------------------------

    def reach(self, host: str) -> Reach:
        return self._reach.get(host) or Reach(host)

    def hello(self, host: str) -> Hello | None:
        client = self._clients.get(host)
        return client.hello if client is not None and client.alive else None

    def _answered(self, host: str, started: float, hello: Hello | None) -> None:
        self._reach[host] = Reach(
            host,
            reachable=True,
            latency_ms=(time.monotonic() - started) * 1000,
            version=hello.version if hello else self.reach(host).version,
        )

    def unreachable(self, host: str, message: str) -> HostUnreachable:
        """Mark ``host`` silent; the error that says so."""
        error = HostUnreachable(message)
        self._silent(host, error)
        return error

    def _silent(self, host: str, error: ZapvisorError) -> None:
        before = self.reach(host)
        since = before.since if before.reachable is False and before.since else utcnow()
        self._reach[host] = replace(before, reachable=False, since=since, error=str(error))

    # -- on the loop ---------------------------------------------------------------------

    async def client(self, host: str) -> AgentClient:
        """The host's agent, opened now when there is none alive. The opening is one
        task per host that callers share and none cancels by giving up on it: an agent
        slow to start (a loaded host) is not killed by each impatient caller in turn,
        it is there for the next one."""
        client = self._clients.get(host)
        if client is not None and client.alive:
            return client
        opening = self._opening.get(host)
        if opening is None:
            if client is not None:
                await self._drop(host)
            opening = asyncio.get_running_loop().create_task(self._open_link(host))
            self._opening[host] = opening
            opening.add_done_callback(lambda task: self._opened(host, task))
        return await asyncio.shield(opening)

    def _opened(self, host: str, task: asyncio.Task[AgentClient]) -> None:
        if self._opening.get(host) is task:
            del self._opening[host]
        if not task.cancelled() and task.exception() is None:
            self._clients[host] = task.result()
        # (an exception nobody waited for is read above, so asyncio does not log it)

    async def _open_link(self, host: str) -> AgentClient:
        streams = await asyncio.wait_for(
            self.opener(host, self.connect_timeout), self.connect_timeout
        )
        client = AgentClient(streams.reader, streams.writer, host, close=streams.close)
        try:
            await client.handshake(self.hello_timeout)
        except HostUnreachable as exc:
            why = await streams.why() if streams.why is not None else None
            await client.close()
            raise (why or exc) from None
        except BaseException:
            await client.close()
            raise
        return client

    async def acall(
        self,
        host: str,
        method: str,
        params: dict[str, Any],
        *,
        timeout: float,
        on_event: Callable[[Any], None] | None = None,
        actor: str | None = None,
    ) -> Any:
        started = time.monotonic()
        self.calls[(host, method)] += 1
        client: AgentClient | None = None
        try:
            client = await self.client(host)
            result = await client.call(
                method, params, timeout=timeout, on_event=on_event, actor=actor
            )
        except ZapvisorError as exc:
            # The host answered with an error (its own, a refused revision, a request it
            # did not understand) while the link stands: it is reachable. No link, a
            # dropped one, or no answer in time: it is not.
            if client is not None and client.alive and not isinstance(exc, HostUnreachable):
                self._answered(host, started, client.hello)
                raise
            self._silent(host, exc)
            await self._drop(host)
            raise
        except (OSError, TimeoutError) as exc:
            error = _unreachable(host, exc)
            self._silent(host, error)
            await self._drop(host)
            raise error from None
        self._answered(host, started, client.hello)
        return result

    async def within(self, host: str, method: str, timeout: float) -> Any:
        """``method`` on ``host`` with ``timeout`` for everything, opening the link
        included: what a live view asks, so that a host whose link hangs while it is
        being opened turns grey as fast as one that stops answering.

        Only a link that was open when this call began is dropped when it runs out of
        time: one that finished opening while this caller waited had only what was left
        of the timeout to answer, and is kept for the next call (dropping it would start
        a new agent each time, and a slow host's would never get to answer)."""
        found = self._clients.get(host)
        try:
            return await asyncio.wait_for(self.acall(host, method, {}, timeout=timeout), timeout)
        except TimeoutError:
            if found is not None and self._clients.get(host) is found:
                await self._drop(host)
            message = f"{host} did not answer {method} within {timeout:g} s"
            raise self.unreachable(host, message) from None

    async def _drop(self, host: str) -> None:
        """Forget the host's link; it is closed in the background (closing a link to a
        silent host may itself take a while) and the next call opens a new one."""
        client = self._clients.pop(host, None)
        if client is not None:
            task = asyncio.get_running_loop().create_task(_quietly_close(client))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    # -- for synchronous callers ---------------------------------------------------------

    def call(
        self,
        host: str,
        method: str,
        params: dict[str, Any],
        *,
        timeout: float,
        on_event: Callable[[Any], None] | None = None,
        actor: str | None = None,
    ) -> Any:
        """``method`` on ``host``; HostUnreachable past ``timeout`` (plus connecting)."""
        coro = self.acall(host, method, params, timeout=timeout, on_event=on_event, actor=actor)
        opening = self.connect_timeout + self.hello_timeout
        return self.loop.run(coro, timeout + opening + 1, what=host)

    def stream(
        self,
        host: str,
        method: str,
        params: dict[str, Any],
        *,
        idle: float,
        actor: str | None = None,
    ) -> Iterator[Any]:
        """A streaming ``method``'s events as they come; None after ``idle`` seconds
        without one (so a caller may stop between two). Closing the iterator cancels
        the stream on the host."""
        items: queue.Queue[tuple[str, Any]] = queue.Queue()

        async def pump() -> None:
            try:
                client = await self.client(host)
                async for event in client.stream(method, params, actor=actor):
                    items.put(("event", event))
                items.put(("end", None))
            except ZapvisorError as exc:
                if isinstance(exc, HostUnreachable | ProtocolError):
                    self._silent(host, exc)
                    await self._drop(host)
                items.put(("error", exc))
            except (OSError, TimeoutError) as exc:
                error = _unreachable(host, exc)
                self._silent(host, error)
                await self._drop(host)
                items.put(("error", error))

        task = self.loop.submit(pump())
        try:
            while True:
                try:
                    kind, value = items.get(timeout=idle)
                except queue.Empty:
                    yield None
                    continue
                if kind == "event":
                    yield value
                elif kind == "error":
                    raise value
                else:
                    return
        finally:
            task.cancel()  # leaves the async for: the client cancels it on the host

    async def aclose(self) -> None:
        """Close every link (on the loop)."""
        for opening in list(self._opening.values()):
            opening.cancel()
        await asyncio.gather(*self._opening.values(), return_exceptions=True)
        for host in list(self._clients):
            await self._drop(host)
        await asyncio.gather(*self._closing, return_exceptions=True)

    def close(self) -> None:
        """Close every link, then the loop; once (a second call does nothing)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self.loop.run(self.aclose(), 5.0)
        self.loop.close()


async def _quietly_close(client: AgentClient) -> None:
    with contextlib.suppress(Exception):
        await client.close()


def _unreachable(host: str, exc: BaseException) -> HostUnreachable:
    if isinstance(exc, TimeoutError):
        return HostUnreachable(f"{host} did not answer in time")
    return HostUnreachable(f"{host} cannot be reached: {exc}")
