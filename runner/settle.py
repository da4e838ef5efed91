"""Settling what the runner made: its start-up heap out of the collector's way, and its
tasks ended before the stop sequence moves on."""

from __future__ import annotations

import asyncio
import gc
import logging

log = logging.getLogger("runner")


SETTLE_AFTER = 1.0
"""Seconds after the port opens: whoever started the runner has had its first /health."""


def settle_heap() -> None:
    """Keep what the runner made to start (~36k objects living as long as it does) out
    of the cyclic collector's full passes, which an idle runner's timers trigger every
    minute or two: ~0.02 ms each rather than ~11 ms, in hundreds of runners at once.
    A start-up cycle that became garbage later would stay; none is expected."""
    gc.collect()
    gc.freeze()


async def settle(tasks: list[asyncio.Task[None]], what: str, timeout: float = 5.0) -> None:
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
