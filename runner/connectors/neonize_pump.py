"""Plumbing between neonize's Go side and the connector.

`EventPump`: neonize schedules each event handler with ``run_coroutine_threadsafe``
and never reads the result, so handlers run interleaved at every await and their
exceptions vanish. Handlers registered through the pump only queue the event; one task
handles them in order and logs what fails.

`CallGate`: neonize's Go side looks its client up by id and dereferences it without a
check, so a call that reaches a stopped client crashes the whole process. The gate
counts the calls in flight, so a stop waits for them before the client goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

log = logging.getLogger("runner.neonize")

Handler = Callable[[Any, Any], Awaitable[None]]


class EventPump:
    def __init__(self, handle: Handler) -> None:
        self._handle = handle
        self._queue: asyncio.Queue[tuple[Any, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="neonize-events")

    async def put(self, client: Any, event: Any) -> None:
        """What neonize schedules: never fails, never waits."""
        self._queue.put_nowait((client, event))

    async def _run(self) -> None:
        while True:
            client, event = await self._queue.get()
            try:
                await self._handle(client, event)
            except Exception:
                log.exception(
                    "handling a %s event failed",
                    type(event).__name__,
                    extra={"event": "handler_failed"},
                )
            finally:
                self._queue.task_done()

    async def close(self, timeout: float) -> None:
        """Handle what is queued (``timeout`` at most), then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout)
        self._task.cancel()
        await asyncio.wait({self._task})


class CallGate:
    def __init__(self) -> None:
        self.calls = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.asynccontextmanager
    async def call(self) -> AsyncIterator[None]:
        self.calls += 1
        self._idle.clear()
        try:
            yield
        finally:
            self.calls -= 1
            if not self.calls:
                self._idle.set()

    async def idle(self, timeout: float) -> bool:
        """Wait until no call is in flight; False when ``timeout`` passed first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True
