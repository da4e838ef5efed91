"""The control side's one event loop for host links, on a thread of its own.

The CLI is synchronous and the terminal app calls the core from worker threads, while
host links (asyncssh, asyncio pipes) live on an event loop. This thread owns that loop
and every link on it; synchronous code hands it coroutines and waits with a timeout, so
a host that does not answer costs its caller that timeout and nobody else anything.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from ecosystem.errors import HostUnreachable

T = TypeVar("T")


class FleetLoop:
    """A daemon thread running an asyncio loop until ``close``."""

    def __init__(self, name: str = "zapvisor-fleet") -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Start ``coro`` on the loop; the caller waits on the future as it likes."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float, what: str = "a host") -> T:
        """``coro``'s result, or HostUnreachable when it takes over ``timeout`` seconds
        (it is cancelled then). Errors it raises are raised here."""
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise HostUnreachable(f"{what} did not answer within {timeout:g} s") from None

    @property
    def on_loop(self) -> bool:
        """Whether the caller is the loop's own thread (where waiting would deadlock)."""
        return threading.current_thread() is self._thread

    def close(self, timeout: float = 2.0) -> None:
        if not self.loop.is_running():
            return

        async def _cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
            self.submit(_cancel_all()).result(timeout)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
