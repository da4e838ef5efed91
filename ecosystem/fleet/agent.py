"""`zapvisor agent --stdio`: a host's side of a link. Each request runs this host's own
Orchestrator method of the same name, with this host's settings, store and
supervisord, in a thread of its own; many requests may run at once.

Every line on stdout is a protocol message: nothing else may print there (progress
lines become events; logs go to stderr).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from ecosystem import __version__
from ecosystem.errors import ProtocolError
from ecosystem.fleet import codec, protocol
from ecosystem.fleet.client import Reader, Writer
from ecosystem.orchestrator import Orchestrator
from ecosystem.plumbing import ACTING_FOR

_EVENTS: contextvars.ContextVar[Callable[[Any], None] | None] = contextvars.ContextVar(
    "agent_events", default=None
)


def _progress(message: str) -> None:
    """The orchestrator's progress lines, sent as events of the call that made them."""
    send = _EVENTS.get()
    if send is not None:
        send({"progress": message})


class Agent:
    def __init__(self, orch: Orchestrator, reader: Reader, writer: Writer) -> None:
        self.orch = orch
        orch.progress = _progress
        self.reader = reader
        self.writer = writer
        self._lock = asyncio.Lock()
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._cancelled: dict[int, threading.Event] = {}

    async def serve(self) -> None:
        """Say hello, then answer requests until the other side closes the link."""
        hello = protocol.Hello(__version__, protocol.PROTOCOL, self.orch.host_id, protocol.METHODS)
        await self._send(hello.to_json())
        loop = asyncio.get_running_loop()
        try:
            while True:
                line = await self.reader.readline()
                if not line:
                    return
                try:
                    message = protocol.load(line)
                except ProtocolError as exc:
                    await self._send({"id": None, "error": protocol.error_body(exc)})
                    continue
                call_id = message.get("id")
                if not isinstance(call_id, int):
                    continue
                if message.get("cancel"):
                    if flag := self._cancelled.get(call_id):
                        flag.set()
                    continue
                self._cancelled[call_id] = threading.Event()
                task = loop.create_task(self._handle(call_id, message))
                self._tasks[call_id] = task
        finally:
            for flag in self._cancelled.values():
                flag.set()
            for task in self._tasks.values():
                task.cancel()

    async def _send(self, message: dict[str, Any]) -> None:
        async with self._lock:
            self.writer.write(protocol.dump(message))
            await self.writer.drain()

    async def _handle(self, call_id: int, message: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()

        def event(data: Any) -> None:  # from the worker thread
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody listens
                asyncio.run_coroutine_threadsafe(self._send({"id": call_id, "event": data}), loop)

        try:
            method, kwargs, result_type = self._resolve(message)
            item = codec.stream_item(result_type)
            actor = message.get("actor")
            ACTING_FOR.set(str(actor) if actor else None)
            _EVENTS.set(event)
            if item is None:
                result = await asyncio.to_thread(method, **kwargs)
                reply: dict[str, Any] = {"id": call_id, "result": codec.encode(result, result_type)}
            else:
                stop = self._cancelled[call_id]
                await asyncio.to_thread(_drain, method(**kwargs), item, event, stop)
                reply = {"id": call_id, "result": None}
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # every failure is an answer, never a dead call
            reply = {"id": call_id, "error": protocol.error_body(exc)}
        finally:
            self._tasks.pop(call_id, None)
            self._cancelled.pop(call_id, None)
        with contextlib.suppress(OSError, RuntimeError):
            await self._send(reply)

    def _resolve(self, message: dict[str, Any]) -> tuple[Callable[..., Any], dict[str, Any], Any]:
        name = message.get("method")
        if not isinstance(name, str) or name not in protocol.METHODS:
            raise ProtocolError(f"{name!r} is not an action this host's agent serves")
        unbound = getattr(Orchestrator, name)
        params = message.get("params") or {}
        if not isinstance(params, dict):
            raise ProtocolError(f"{name}: params must be an object")
        try:
            kwargs = codec.decode_params(unbound, params)
        except TypeError as exc:
            raise ProtocolError(f"{name}: {exc}") from None
        # by position where the signature allows: a routed method takes its session
        # name positionally only
        bound = inspect.signature(unbound).bind(self.orch, **kwargs)
        return (
            functools.partial(unbound, *bound.args, **bound.kwargs),
            {},
            codec.hints(unbound).get("return"),
        )


def _drain(
    items: Iterator[Any], item_type: Any, event: Callable[[Any], None], stop: threading.Event
) -> None:
    """Send a streaming method's items until it ends or the client cancels; empty
    batches (a followed log with nothing new) are not sent."""
    try:
        for item in items:
            if stop.is_set():
                return
            if item or item == 0:
                event(codec.encode(item, item_type))
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()


async def serve_stdio(orch: Orchestrator) -> None:
    """The agent on this process's stdin and stdout."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=protocol.MAX_LINE)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    transport, proto = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, sys.stdout.buffer
    )
    writer = asyncio.StreamWriter(transport, proto, None, loop)
    await Agent(orch, reader, writer).serve()
