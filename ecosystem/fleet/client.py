"""The control side of one host link: requests out, replies and events in, matched by id.

Works over any pair of byte streams with ``await reader.readline()`` and
``writer.write(bytes)`` / ``await writer.drain()``: an asyncio subprocess's pipes (tests,
and the local loopback), an SSH channel's stdin/stdout (a real host).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from ecosystem import __version__
from ecosystem.errors import HostUnreachable, ProtocolError, VersionSkew, ZapvisorError
from ecosystem.fleet import protocol
from ecosystem.fleet.protocol import Hello


class Reader(Protocol):
    async def readline(self) -> bytes: ...


class Writer(Protocol):
    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...


_DONE = object()


class _Pending:
    def __init__(self, loop: asyncio.AbstractEventLoop, events: bool) -> None:
        self.future: asyncio.Future[Any] = loop.create_future()
        self.events: asyncio.Queue[Any] | None = asyncio.Queue() if events else None
        self.on_event: Callable[[Any], None] | None = None


class AgentClient:
    """One agent on one host. Many calls may be in flight at once."""

    def __init__(
        self,
        reader: Reader,
        writer: Writer,
        host: str,
        *,
        close: Callable[[], Awaitable[None] | None] | None = None,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.host = host
        self.hello: Hello | None = None
        self.failure: ZapvisorError | None = None
        self._close = close
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._write_lock = asyncio.Lock()
        self._reading: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return self.failure is None

    async def handshake(self, timeout: float) -> Hello:
        """Read the agent's hello; VersionSkew when its protocol is not ours."""
        try:
            line = await asyncio.wait_for(self.reader.readline(), timeout)
        except TimeoutError:
            raise HostUnreachable(
                f"{self.host}: no hello from its agent within {timeout:g} s"
            ) from None
        except Exception as exc:  # the channel's own errors too (see _read_loop)
            raise HostUnreachable(
                f"{self.host}: the link broke before its agent said hello ({exc!r:.80})"
            ) from None
        if not line:
            raise HostUnreachable(f"{self.host}: its agent closed the link before saying hello")
        hello = Hello.from_json(protocol.load(line))
        if hello.protocol != protocol.PROTOCOL:
            raise VersionSkew(
                f"{self.host} runs zapvisor {hello.version} (protocol {hello.protocol}); this "
                f"zapvisor {__version__} speaks protocol {protocol.PROTOCOL}: "
                f"`zapvisor hosts upgrade {self.host}` installs this version there"
            )
        self.hello = hello
        self._reading = asyncio.get_running_loop().create_task(self._read_loop())
        return hello

    def check_method(self, method: str) -> None:
        """VersionSkew when the host's revision of ``method`` is not ours."""
        ours = protocol.METHODS.get(method)
        hello = self.hello
        theirs = hello.methods.get(method) if hello else None
        if ours is None:
            raise ProtocolError(f"{method} is not an action an agent serves")
        if hello is not None and theirs != ours:
            have = f"revision {theirs}" if theirs is not None else "no such action"
            raise VersionSkew(
                f"{method} on {self.host} refused: {self.host} runs zapvisor {hello.version} "
                f"({method}: {have}), this is zapvisor {__version__} ({method}: revision "
                f"{ours}); `zapvisor hosts upgrade {self.host}` makes them match"
            )

    async def call(
        self,
        method: str,
        params: dict[str, Any],
        *,
        timeout: float,
        on_event: Callable[[Any], None] | None = None,
        actor: str | None = None,
    ) -> Any:
        """The result of ``method`` on the host (events go to ``on_event``); the same
        ZapvisorError the host raised; HostUnreachable after ``timeout`` seconds."""
        self.check_method(method)
        call_id, pending = await self._send(method, params, events=False, actor=actor)
        pending.on_event = on_event
        try:
            return await asyncio.wait_for(asyncio.shield(pending.future), timeout)
        except TimeoutError:
            raise HostUnreachable(
                f"{self.host} did not answer {method} within {timeout:g} s"
            ) from None
        finally:
            # given up on (timed out, or the caller cancelled): a late reply is dropped
            # by _dispatch, and the entry must not stay for the link's whole life
            if not pending.future.done():
                self._pending.pop(call_id, None)

    async def stream(
        self, method: str, params: dict[str, Any], *, actor: str | None = None
    ) -> AsyncIterator[Any]:
        """The events of a streaming ``method`` as they come; leaving the loop early
        cancels it on the host."""
        self.check_method(method)
        call_id, pending = await self._send(method, params, events=True, actor=actor)
        assert pending.events is not None
        try:
            while True:
                item = await pending.events.get()
                if item is _DONE:
                    break
                yield item
            await pending.future  # raises the host's error, if it ended with one
        finally:
            if not pending.future.done() and self.alive:
                with contextlib.suppress(ZapvisorError, OSError):
                    await self._write({"id": call_id, "cancel": True})
            self._pending.pop(call_id, None)

    async def _send(
        self, method: str, params: dict[str, Any], *, events: bool, actor: str | None
    ) -> tuple[int, _Pending]:
        if self.failure is not None:
            raise self.failure
        call_id = next(self._ids)
        pending = _Pending(asyncio.get_running_loop(), events)
        self._pending[call_id] = pending
        try:
            message = {"id": call_id, "method": method, "params": params}
            if actor:
                message["actor"] = actor
            await self._write(message)
        except BaseException:
            self._pending.pop(call_id, None)
            raise
        return call_id, pending

    async def _write(self, message: dict[str, Any]) -> None:
        async with self._write_lock:
            try:
                self.writer.write(protocol.dump(message))
                await self.writer.drain()
            except (OSError, RuntimeError, EOFError) as exc:
                self._fail(HostUnreachable(f"{self.host}: the link dropped ({exc!r:.80})"))
                raise self.failure or exc from None

    async def _read_loop(self) -> None:
        try:
            while True:
                line = await self.reader.readline()
                if not line:
                    self._fail(HostUnreachable(f"{self.host}: the link closed"))
                    return
                self._dispatch(protocol.load(line))
        except ZapvisorError as exc:
            self._fail(exc)
        except Exception as exc:
            # OSError and EOF on pipes; an SSH channel's reader raises asyncssh's own
            # errors (ConnectionLost when the keepalives go unanswered), not OSError
            self._fail(HostUnreachable(f"{self.host}: the link dropped ({exc!r:.80})"))
        except asyncio.CancelledError:
            self._fail(HostUnreachable(f"{self.host}: the link was closed"))
            raise

    def _dispatch(self, message: dict[str, Any]) -> None:
        pending = self._pending.get(message.get("id", -1))
        if pending is None:
            return  # a reply to a call given up on (timed out, or a stream cancelled)
        if "event" in message:
            if pending.events is not None:
                pending.events.put_nowait(message["event"])
            elif pending.on_event is not None:
                pending.on_event(message["event"])
            return
        if pending.future.done():
            return
        if "error" in message:
            pending.future.set_exception(
                protocol.make_error(message["error"], f" from {self.host}")
            )
        else:
            pending.future.set_result(message.get("result"))
        if pending.events is not None:
            pending.events.put_nowait(_DONE)
        self._pending.pop(message["id"], None)

    def _fail(self, error: ZapvisorError) -> None:
        if self.failure is None:
            self.failure = error
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(self.failure)
                pending.future.exception()  # retrieved: no "never retrieved" warning
            if pending.events is not None:
                pending.events.put_nowait(_DONE)
        self._pending.clear()

    async def close(self) -> None:
        self._fail(HostUnreachable(f"{self.host}: the link was closed"))
        if self._reading is not None:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reading
        if self._close is not None:
            done = self._close()
            if done is not None:
                with contextlib.suppress(Exception):
                    await done
