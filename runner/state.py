"""A runner's view of its session, and the one writer that reports it to the store.

Store writes go through a single thread in order, coalesced: when the store is slow or
down the runner keeps working, and the newest state lands when the store answers again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ecosystem.backoff import Backoff
from ecosystem.errors import LeaseLost, RunnerError, SessionNotFound, ZapvisorError
from ecosystem.session import Session
from ecosystem.states import Status
from ecosystem.store import Store

log = logging.getLogger("runner.state")
ACTOR = "runner"


@dataclass
class LiveState:
    """What the runner knows now; the API answers from this, never from the store."""

    status: Status = Status.INITIALIZING
    phone: str | None = None
    qr_payload: str | None = None
    qr_expires_at: datetime | None = None
    last_error: str | None = None
    connected_at: datetime | None = None
    last_activity_at: datetime | None = None
    messages_sent: int = 0
    messages_received: int = 0
    device_jid: str | None = None
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def from_session(cls, session: Session) -> LiveState:
        return cls(
            phone=session.phone,
            messages_sent=session.messages_sent,
            messages_received=session.messages_received,
            last_activity_at=session.last_activity_at,
            device_jid=session.device_jid,
        )


class Reporter:
    """Applies changes to the live state and persists them to the store."""

    def __init__(self, store: Store, session: str, live: LiveState) -> None:
        self.store = store
        self.session = session
        self.live = live
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="store")
        self._pending: dict[str, Any] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.on_status: Callable[[Status, Status, str | None], None] | None = None
        """Called on every status transition (the runner turns it into a webhook)."""
        self.on_lost: Callable[[str], None] | None = None
        """Called when the store refuses a write because the lease moved on."""
        self._riders: list[tuple[Callable[[Session | None], Any], asyncio.Future[Any]]] = []
        self._retrying = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._writer(), name="store-writer")

    async def update(self, **changes: Any) -> None:
        """Change the live state now; the store follows as soon as it can."""
        before = self.live.status
        for key, value in changes.items():
            setattr(self.live, key, value)
        # pending before the status callback: the event it emits (connection_change)
        # rides this very write, ahead of any event emitted after it (a QR's)
        self._pending.update(changes)
        if "status" in changes and changes["status"] != before:
            log.info(
                "status %s -> %s",
                before,
                changes["status"],
                extra={"event": "status", "from": str(before), "to": str(changes["status"])},
            )
            if self.on_status is not None:
                self.on_status(before, changes["status"], changes.get("last_error"))
        self._idle.clear()
        self._wake.set()

    def ride(self, fn: Callable[[Session | None], Any]) -> asyncio.Future[Any] | None:
        """Run ``fn`` on the store thread right after the write of the changes pending
        now, with the row that write read back (None if it failed); the future gets
        what ``fn`` returns or raises. None when no write is pending or the store is
        failing: the caller makes its own call. A QR rotation is a report and an event:
        riding, the event needs no second trip to the store thread, nor a second read
        of the row to learn whether the session wants it (each trip wakes the runner,
        ~0.3 ms of CPU for hundreds of idle runners)."""
        if not self._pending or self._retrying or self._closed or self._task is None:
            return None
        future = asyncio.get_running_loop().create_future()
        self._riders.append((fn, future))
        return future

    async def call(self, fn: Any, *args: Any) -> Any:
        """Run a blocking store call on the writer's thread (keeps ordering).

        After :meth:`close` the thread is gone: a caller still running then (a request
        the stop outlived, a late connector callback) gets a RunnerError it can handle,
        not the executor's RuntimeError."""
        if self._closed:
            raise RunnerError(f"session {self.session}'s runner is stopping")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, fn, *args)

    async def _writer(self) -> None:
        backoff = Backoff(0.5, 30.0)
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending, {}
                riders, self._riders = self._riders, []
                try:
                    await self.call(self._persist, batch, riders)
                    self._retrying = False
                    backoff.reset()
                except asyncio.CancelledError:
                    for _, future in riders:  # settled already if the write ran
                        future.cancel()
                    raise
                except LeaseLost as exc:
                    # fenced: this runner's state is no longer the session's; never retried
                    self._pending.clear()
                    if self.on_lost is not None:
                        self.on_lost(str(exc))
                except SessionNotFound:
                    # Deleted: supervisord stops this runner next. Retrying would only
                    # hold its stop up (close() waits for what is pending).
                    log.warning(
                        "session deleted from the store; not reporting to it any more",
                        extra={"event": "session_deleted"},
                    )
                    self._pending.clear()
                except ZapvisorError as exc:
                    # Keep the newest values for the next attempt.
                    self._pending = batch | self._pending
                    self._retrying = True
                    self._release()
                    delay = backoff.next()
                    log.warning(
                        "store unavailable, will retry in %.1f s: %s",
                        delay,
                        exc,
                        extra={"event": "store_retry"},
                    )
                    await asyncio.sleep(delay)
            self._idle.set()

    def _release(self) -> None:
        """Riders that came while a failing write was on its way go their own way now
        (a call of their own, with no row) rather than wait out the retry's backoff."""
        riders, self._riders = self._riders, []
        for fn, future in riders:
            own = asyncio.ensure_future(self.call(fn, None))
            own.add_done_callback(_PassOn(future))

    def _persist(
        self,
        batch: dict[str, Any],
        riders: list[tuple[Callable[[Session | None], Any], asyncio.Future[Any]]],
    ) -> None:
        try:
            row = self.store.set_runtime(self.session, batch, actor=ACTOR)
        except BaseException:
            _carry(riders, None)
            raise
        _carry(riders, row)

    async def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything pending reached the store (or ``timeout``)."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            return False

    async def close(self) -> None:
        await self.flush()
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            # Wait for it to end: cancelled mid-write it must not reach for the pool again.
            await asyncio.wait({self._task})
        self._pool.shutdown(wait=True)


def _carry(
    riders: list[tuple[Callable[[Session | None], Any], asyncio.Future[Any]]], row: Session | None
) -> None:
    """On the store thread: run each rider with ``row`` and hand its outcome to the loop."""
    for fn, future in riders:
        try:
            result, error = fn(row), None
        except Exception as exc:
            result, error = None, exc
        future.get_loop().call_soon_threadsafe(_settle, future, result, error)


def _settle(future: asyncio.Future[Any], result: Any, error: Exception | None) -> None:
    if future.done():  # cancelled meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


@dataclass
class _PassOn:
    """A done callback that gives ``future`` the outcome of the future it is called with."""

    future: asyncio.Future[Any]

    def __call__(self, done: asyncio.Future[Any]) -> None:
        if self.future.done():
            return
        if done.cancelled():
            self.future.cancel()
        elif (error := done.exception()) is not None:
            self.future.set_exception(error)
        else:
            self.future.set_result(done.result())
