"""The threads the app's workers run on: daemon threads that quitting may abandon.

Textual runs every thread worker through the event loop's default executor. With the
standard one (a ThreadPoolExecutor) leaving the app waits for every call in flight:
``asyncio.run`` joins the executor, and so does ``concurrent.futures`` at interpreter
exit. A store or supervisord that stopped answering would then hold ctrl+q forever.

Abandoning such a call is safe: every store write is one transaction (SQLite's journal,
PostgreSQL's server-side rollback when the connection drops), so it either committed or
left nothing; supervisord finishes a call it received whether or not we wait for the
answer; and config files are written by rename, then re-rendered from the store by the
next command. Reads only feed the screen that is going away.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class DaemonExecutor(ThreadPoolExecutor):
    """Each call on a thread of its own that never holds the process up at exit.

    A ThreadPoolExecutor only by name: asyncio accepts nothing else as a loop's default
    executor, but none of the pool's machinery (its non-daemon threads, its exit hook)
    is used, so its ``__init__`` is not called."""

    def __init__(self, name: str = "zapvisor-worker") -> None:
        self._name = name
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._running: set[threading.Thread] = set()
        self._idle = threading.Condition(self._lock)
        self._shut = False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()

        def run() -> None:
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        result = fn(*args, **kwargs)
                    except BaseException as exc:  # handed to whoever awaits the future
                        future.set_exception(exc)
                    else:
                        future.set_result(result)
            finally:
                with self._lock:
                    self._running.discard(thread)
                    self._idle.notify_all()

        thread = threading.Thread(target=run, name=f"{self._name}-{next(self._ids)}", daemon=True)
        with self._lock:
            if self._shut:
                raise RuntimeError("cannot schedule new calls after shutdown")
            self._running.add(thread)
        thread.start()
        return future

    @property
    def busy(self) -> int:
        """Calls still running."""
        with self._lock:
            return len(self._running)

    def wait_idle(self, timeout: float) -> bool:
        """Whether every call ended within ``timeout`` seconds."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._running, timeout)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No new calls; with ``wait``, block until the running ones end (the app's exit
        path never asks to wait: see the module's docstring)."""
        with self._lock:
            self._shut = True
        if wait:
            with self._idle:
                self._idle.wait_for(lambda: not self._running)
