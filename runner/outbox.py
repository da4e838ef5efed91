"""A runner's webhook outbox: events go to the store first, then to the receiver.

``emit`` writes the event to the store's outbox (on the store thread, in order) when the
session subscribes to it; the dispatcher delivers due events one at a time, signs each
with the session's secret, and records every attempt. Retries follow
``ZAPVISOR_WEBHOOK_RETRY_SCHEDULE``; a 4xx other than 408/429 is final; after the last
attempt the event is dead-lettered (kept, `zapvisor webhooks NAME --replay` retries it).
A runner killed at any moment loses nothing: whatever reached the outbox is delivered
after the restart, at least once, with the same event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ecosystem import __version__
from ecosystem.backoff import Backoff
from ecosystem.errors import StoreUnsupported, ZapvisorError
from ecosystem.paths import StatePaths
from ecosystem.session import utcnow
from ecosystem.store import Store
from ecosystem.webhook_events import (
    EVENT_HEADER,
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    DeliveryState,
    WebhookEvent,
    ensure_secret,
    new_event,
    read_secret,
    sign,
)

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("runner.outbox")

IDLE_RECHECK = 600.0
"""With nothing due, look at the outbox again this often: only for events replayed from
the CLI while its wake-up call could not reach us (two queries per runner per look, for
hundreds of idle runners, is not free)."""
KEEP_DELIVERED = timedelta(days=7)
PRUNE_EVERY = 6 * 3600.0
BATCH = 20
LEASE_MIN = 5.0
RESPONSE_READ_LIMIT = 64 * 1024

StoreCall = Callable[..., Awaitable[Any]]
Extra = Callable[[], dict[str, Any]]


class Sender:
    """Posts a session's deliveries over one pooled httpx client, made on the first
    delivery (a runner without a webhook URL never loads httpx nor a TLS context)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None

    def _pooled(self) -> httpx.AsyncClient:
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.timeout,
                follow_redirects=False,
                trust_env=False,  # no proxy or netrc from supervisord's environment
                limits=httpx.Limits(max_connections=2, max_keepalive_connections=1),
            )
        return self._client

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str]:
        """POST without following redirects; (HTTP status or None, a short description).
        Userinfo in the URL is sent as Basic auth."""
        import httpx

        parts = urlsplit(url)
        try:
            # A URL stored before its port was checked must fail this delivery, not
            # crash the dispatcher (the runner would crash-loop on the same event).
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as exc:
            return None, f"invalid webhook URL: {exc}"
        if not parts.hostname:
            return None, "invalid webhook URL: no host"
        try:
            # The whole attempt is bounded, not only each read: a receiver that drips
            # its answer a byte at a time cannot hold the session's deliveries (nor
            # outlive the event's lease, after which another runner may claim it).
            async with asyncio.timeout(self.timeout):
                request = self._pooled().build_request("POST", url, content=body, headers=headers)
                response = await self._pooled().send(request, stream=True)
                try:
                    read = 0
                    async for chunk in response.aiter_raw():
                        read += len(chunk)
                        if read >= RESPONSE_READ_LIMIT:
                            break
                finally:
                    await response.aclose()
        except TimeoutError:
            return None, f"the receiver took longer than {self.timeout:g} s"
        except httpx.TimeoutException:
            return None, f"the receiver took longer than {self.timeout:g} s"
        except httpx.InvalidURL as exc:
            return None, f"invalid webhook URL: {exc}"
        except (httpx.HTTPError, OSError, ValueError) as exc:
            root = _root_cause(exc)
            return None, f"{type(root).__name__}: {root}"[:300]
        status = response.status_code
        if 300 <= status < 400:
            return status, f"HTTP {status} (redirects are not followed)"
        return status, f"HTTP {status}"

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _root_cause(exc: BaseException) -> BaseException:
    """The error under httpx's wrappers (``ConnectionRefusedError: …`` says more to an
    operator than ``ConnectError: All connection attempts failed``)."""
    while (inner := exc.__cause__ or exc.__context__) is not None:
        exc = inner
    return exc


def retryable(status: int | None) -> bool:
    return status is None or not (400 <= status < 500) or status in (408, 429)


class Outbox:
    def __init__(
        self,
        store: Store,
        session: str,
        paths: StatePaths,
        call: StoreCall,
        delays: tuple[float, ...],
        timeout: float,
    ) -> None:
        self.store = store
        self.session = session
        self.paths = paths
        self.call = call
        self.delays = delays
        self.timeout = timeout
        self.lease = timedelta(seconds=max(LEASE_MIN, 2 * timeout))
        """How long an event claimed from the outbox is ours: a runner killed mid-delivery
        leaves it due again after that; another process claiming the session's events
        meanwhile (a second runner somewhere) skips it."""
        self._wake = asyncio.Event()
        self.sender = Sender(timeout)
        self._unsaved: list[tuple[WebhookEvent, Extra | None]] = []
        self._pruned = 0.0
        self._saving: set[asyncio.Future[Any]] = set()
        self._sealed = False
        self.ride: Callable[[Callable[[Any], Any]], asyncio.Future[Any] | None] | None = None
        """The reporter's ride (runner/state.py): an event emitted with a report pending
        is kept by that report's trip to the store, from the row it read back."""

    # -- producing -----------------------------------------------------------------

    def emit(
        self, event: str, data: dict[str, Any], more: Extra | None = None
    ) -> asyncio.Future[Any]:
        """Queue ``event`` for the outbox; never raises. Await the result to know the
        event is in the store (or, with the store down, kept in memory to retry).

        ``more`` adds fields that are costly to make (the qr_code event's PNG): it runs
        on the store thread, and only when the session subscribes to the event.

        Once the runner's stop has sealed the outbox, an event is logged and dropped:
        the store thread is about to go, and what the stop flushes must be final."""
        if self._sealed:
            log.warning(
                "webhook event %s dropped: the runner is stopping",
                event,
                extra={"event": "webhook_dropped", "webhook": event},
            )
            done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        row = new_event(self.session, event, data)
        row.next_attempt_at = row.created_at + timedelta(seconds=self.delays[0])
        ridden = self.ride(functools.partial(self._save, row, more)) if self.ride else None
        future: asyncio.Future[Any]
        if ridden is None:
            future = asyncio.ensure_future(self.call(self._save, row, more))
        else:
            future = ridden
        self._saving.add(future)
        future.add_done_callback(lambda f: self._saved(f, row, more))
        return asyncio.ensure_future(asyncio.wait({future}))

    def _save(self, row: WebhookEvent, more: Extra | None = None, read: Any = None) -> bool:
        """On the store thread: keep the event when the session subscribes to it.
        ``read``: the session's row read after the event was made (a report's write),
        else it is read now."""
        session = read if read is not None else self.store.get_session(self.session)
        if not session.webhook_url:
            return False
        if session.webhook_events and row.event not in session.webhook_events:
            return False
        if more is not None:
            row.payload.update(more())
        self.store.enqueue_webhook(row)
        return True

    def _saved(self, future: asyncio.Future[Any], row: WebhookEvent, more: Extra | None) -> None:
        self._saving.discard(future)
        if future.cancelled():
            return
        exc = future.exception()
        if isinstance(exc, StoreUnsupported):
            return  # said once by the dispatcher; nothing to keep
        if exc is None:
            if future.result():
                self._wake.set()
            return
        # The store is down: keep it in memory and let the dispatcher retry.
        log.warning(
            "webhook event not stored yet: %s",
            exc,
            extra={"event": "webhook_unsaved", "webhook": row.event},
        )
        self._unsaved.append((row, more))
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def seal(self) -> None:
        """Accept no more events (the stop sequence, once every producer has stopped)."""
        self._sealed = True

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait until emitted events reached the store (used before a clean exit)."""
        if self._saving:
            await asyncio.wait(list(self._saving), timeout=timeout)

    # -- delivering ----------------------------------------------------------------

    async def run(self) -> None:
        # The secret's file on the store's thread, never on the loop's default executor:
        # a connector's native call may block one of its threads for good.
        await self.call(ensure_secret, self.paths, self.session)
        backoff = Backoff(1.0, 30.0)
        while True:
            self._wake.clear()
            try:
                await self._resave()
                await self._maybe_prune()
                due = await self.call(
                    functools.partial(self.store.due_webhooks, lease=self.lease),
                    self.session,
                    utcnow(),
                    BATCH,
                )
                if due:
                    await self._deliver_batch(due)
                    backoff.reset()
                    continue
                nxt = await self.call(self.store.next_webhook_due, self.session)
                backoff.reset()
            except StoreUnsupported as exc:
                log.warning("%s", exc, extra={"event": "webhooks_off"})
                self._unsaved.clear()
                return
            except ZapvisorError as exc:
                delay = backoff.next()
                log.warning(
                    "webhook outbox unavailable, retrying in %.1f s: %s",
                    delay,
                    exc,
                    extra={"event": "webhook_store_retry"},
                )
                await asyncio.sleep(delay)
                continue
            wait = IDLE_RECHECK
            if nxt is not None:
                wait = min(wait, max(0.0, (nxt - utcnow()).total_seconds()))
            if self._unsaved:
                wait = min(wait, 1.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def _resave(self) -> None:
        while self._unsaved:
            await self.call(self._save, *self._unsaved[0])
            self._unsaved.pop(0)

    async def _maybe_prune(self) -> None:
        if time.monotonic() - self._pruned < PRUNE_EVERY and self._pruned:
            return
        self._pruned = time.monotonic()
        await self.call(self.store.prune_webhooks, self.session, utcnow() - KEEP_DELIVERED)

    async def _deliver_batch(self, due: list[WebhookEvent]) -> None:
        session = await self.call(self.store.get_session, self.session)
        try:
            secret = await self.call(read_secret, self.paths, self.session)
        except ZapvisorError:
            secret = await self.call(ensure_secret, self.paths, self.session)
        for row in due:
            await self._deliver(row, session.webhook_url, secret)

    async def _deliver(self, row: WebhookEvent, url: str | None, secret: str) -> None:
        attempt = row.attempts + 1
        if not url:
            status, note = None, "no webhook URL is configured"
            final = True
        else:
            body = json.dumps(row.payload, ensure_ascii=False, separators=(",", ":")).encode()
            stamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                "User-Agent": f"zapvisor/{__version__}",
                EVENT_HEADER: row.event,
                ID_HEADER: row.event_id,
                TIMESTAMP_HEADER: stamp,
                SIGNATURE_HEADER: sign(secret, stamp, body),
                "X-Zapvisor-Attempt": str(attempt),
            }
            status, note = await self.sender.post(url, body, headers)
            final = not retryable(status)
        now = utcnow()
        extra = {"webhook": row.event, "event_id": row.event_id, "attempt": attempt}
        if status is not None and 200 <= status < 300:
            await self._record(
                row.event_id,
                state=DeliveryState.DELIVERED,
                attempts=attempt,
                at=now,
                status=status,
            )
            log.info("webhook delivered", extra={"event": "webhook_delivered", **extra})
            return
        if final or attempt >= len(self.delays):
            why = "not retried" if final else f"gave up after {attempt} attempts"
            await self._record(
                row.event_id,
                state=DeliveryState.DEAD,
                attempts=attempt,
                at=now,
                status=status,
                error=f"{note}; {why}",
            )
            log.warning(
                "webhook dead-lettered: %s; %s",
                note,
                why,
                extra={"event": "webhook_dead", **extra},
            )
            return
        retry_at = now + timedelta(seconds=self.delays[attempt])
        await self._record(
            row.event_id,
            state=DeliveryState.PENDING,
            attempts=attempt,
            at=now,
            next_attempt_at=retry_at,
            status=status,
            error=note,
        )
        log.info(
            "webhook failed (%s), retry at %s",
            note,
            retry_at.isoformat(timespec="seconds"),
            extra={"event": "webhook_retry", **extra},
        )

    async def _record(self, event_id: str, **outcome: Any) -> None:
        await self.call(functools.partial(self.store.record_webhook_attempt, event_id, **outcome))

    async def close(self) -> None:
        self._sealed = True
        await self.sender.aclose()
