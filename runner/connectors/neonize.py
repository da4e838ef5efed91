"""The real WhatsApp link: neonize (Python over whatsmeow, the Go library in its wheel).

Auth lives in `tokens/<name>/neonize.db`, so a restart reconnects without a new QR. The
phone lists this device as "zapvisor <name>". whatsmeow reconnects by itself once
connected, but a failed first connect is never retried, a ConnectFailure blocks its own
reconnect and the QR window ends in silence: this connector retries with capped
exponential backoff (status `reconnecting`) and runs its own QR watchdog.

neonize's events arrive as coroutines it schedules and never awaits: they are queued
and handled one at a time, in order, by one task that logs what fails. Anything that
calls into the Go side needs that client alive (neonize's Go side dereferences a
deleted client and crashes the process): API calls only while the link is up, counted
so a stop waits for them; events of an old or stopping client change no state.

An unpaired client cannot be stopped (see neonize_handover.py): the runner is recycled
instead, and everything it reported is flushed first.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import shutil
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ecosystem.backoff import Backoff
from ecosystem.errors import StoreError, ZapvisorError
from ecosystem.session import utcnow
from ecosystem.settings import Settings
from ecosystem.states import Status
from runner.connectors import neonize_client, neonize_handover, neonize_ops
from runner.connectors.base import ConnectorEvents
from runner.connectors.neonize_api import NeonizeRequests
from runner.connectors.neonize_auth import NeonizeAuth, own_device
from runner.connectors.neonize_handover import MAX_CLIENTS, Next
from runner.connectors.neonize_inbound import ack_chat, inbound_from, lids_to_resolve, media_of
from runner.connectors.neonize_map import (
    PAIR_CODE_SECONDS,
    QrWatchdog,
    Transition,
    ack_status,
    transition_for,
)
from runner.connectors.neonize_ops import short
from runner.connectors.neonize_pump import CallGate, EventPump
from runner.connectors.neonize_store import ClientStore

log = logging.getLogger("runner.neonize")
AUTH_DB = "neonize.db"
STOP_TIMEOUT = 10.0
STOP_WAIT = 3.0
"""How long a stopped client's connect call may take to return before the runner is
recycled (a paired client returns at once; an unpaired one never does)."""
CALLS_GRACE = 5.0
DRAIN_TIMEOUT = 5.0


@dataclasses.dataclass(frozen=True)
class QrCode:
    payload: bytes


class NeonizeConnector(NeonizeRequests):
    kind = "neonize"
    pair_code_seconds = PAIR_CODE_SECONDS

    def __init__(
        self,
        session: str,
        auth_dir: Path,
        events: ConnectorEvents,
        settings: Settings,
        *,
        backoff: Backoff | None = None,
        watchdog: QrWatchdog | None = None,
        client_factory: Callable[[str, str, str, ClientStore | None], Any] | None = None,
        stop_wait: float = STOP_WAIT,
    ) -> None:
        super().__init__(session, auth_dir, events, settings)
        neonize_client.without_the_sync_client()
        self.backoff = backoff or Backoff()
        self.watchdog = watchdog or QrWatchdog()
        self.stop_wait = stop_wait
        self._factory = client_factory or neonize_client.new_client
        self._client: Any = None
        self._conn: asyncio.Future[Any] | None = None
        """The current client's connect task: neonize's Neonize() call in a thread."""
        self._given_up: asyncio.Future[Any] | None = None
        self._generation = 0
        self._phone: str | None = None
        self._link_up = False
        self._interrupt = asyncio.Event()
        self._rearmed = asyncio.Event()
        """Set when a QR code arms the watchdog: the watch loop looks at it again."""
        self._start = asyncio.Event()
        self._end: Next | None = None
        self._forget = False
        self._closing = False
        self._active = False
        self._stopping = False
        self._pump = EventPump(self.handle)
        self._gate = CallGate()
        self._pair_expires: datetime | None = None
        self._auth: NeonizeAuth | None = None

    @property
    def db_path(self) -> Path:
        return self.auth_dir / AUTH_DB

    @property
    def auth(self) -> NeonizeAuth:
        """Where the auth lives (the context is set after __init__: see make_connector)."""
        if self._auth is None:
            self._auth = NeonizeAuth(self.session, self.settings, self.context, self.db_path)
        return self._auth

    @property
    def leaves_thread(self) -> bool:
        return self._conn is not None and not self._conn.done()

    # -- the life of the link ------------------------------------------------------

    async def run(self) -> None:
        neonize_client.quiet_neonize_logging()
        self.auth_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.auth_dir.chmod(0o700)
        step = neonize_handover.take(self.auth_dir) or Next()
        if step.failures is not None:
            self.backoff.failures = step.failures
        self._pump.start()
        while not self._closing:
            if step.status is not None:
                await self.events.disconnected(step.status, step.reason)
            if self.leaves_thread or self._generation >= MAX_CLIENTS:
                step = dataclasses.replace(step, failures=self.backoff.failures)
                neonize_handover.hand_over(self.auth_dir, step, stuck=self.leaves_thread)
            if step.forget_auth:
                self._phone = None
                self.remove_auth()
                log.info("auth removed", extra={"event": "auth_removed"})
            if step.wait != 0:
                await self._wait_start(step.wait)
            if self._forget:  # logged out while waiting: pair again
                self._forget = False
                step = Next(forget_auth=True)
                continue
            step = await self._one_client()

    async def _wait_start(self, timeout: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._start.wait(), timeout)
        if self._start.is_set():
            self._start.clear()
            self.backoff.reset()

    def _retry(self, reason: str) -> Next:
        delay = self.backoff.next()
        log.warning(
            "cannot connect to WhatsApp (%s); retrying in %g s",
            reason,
            delay,
            extra={"event": "reconnect_wait", "delay": delay},
        )
        return Next(delay, Status.RECONNECTING, f"{reason}; retrying in {delay:g} s")

    async def _one_client(self) -> Next:
        self._generation += 1
        self._interrupt.clear()
        self._end = None
        self._stopping = False
        self.watchdog.disarm()
        try:
            where = await self.auth.where()
        except StoreError as exc:
            return self._retry(short(exc))
        except ZapvisorError as exc:  # AuthUnusable: a device gone, a setting refused
            await self.events.failed(str(exc))
            return Next(None)  # until POST /start or a logout: no crash, no retry loop
        uuid = f"{self.session}#{self._generation}"
        client = self._factory(str(self.db_path), uuid, self.session, where)
        self._register(client)
        self._client = client
        self._active = True
        try:
            try:
                task = await client.connect()
            except Exception as exc:
                return self._retry(short(exc))
            self._conn = task
            return await self._watch(client, task)
        finally:
            self._link_up = False
            self._active = False

    async def _watch(self, client: Any, task: asyncio.Future[Any]) -> Next:
        waiter = asyncio.ensure_future(self._interrupt.wait())
        try:
            while True:
                # While a QR is on show, look at the watchdog every second (its clock
                # may not be the loop's); otherwise sleep until something happens.
                remaining = self.watchdog.remaining()
                rearmed = asyncio.ensure_future(self._rearmed.wait())
                await asyncio.wait(
                    {task, waiter, rearmed},
                    timeout=None if remaining is None else min(remaining, 1.0),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                rearmed.cancel()
                self._rearmed.clear()
                if self._end is not None:
                    await self._stop_client(client, task)
                    return self._end
                if task.done():
                    # Neonize() returned by itself (e.g. neonize 0.5.2 ends a client's
                    # event loop when it cannot encode an event, such as a receipt
                    # whose Type it left unset): whatsmeow's connection may still be
                    # up, and a second one on the same device would be "replaced".
                    error = None if task.cancelled() else task.exception()
                    await self._stop_client(client, task)
                    return self._retry(short(error) if error else "the connection ended")
                if self.watchdog.expired():
                    shown = self.watchdog.shown
                    await self._stop_client(client, task)
                    self.watchdog.disarm()
                    return Next(
                        None,
                        Status.DISCONNECTED,
                        f"the QR was not scanned ({shown} codes shown) nor a pairing code "
                        f"entered; POST /start or `zapvisor restart {self.session}` shows "
                        "a new QR",
                    )
        finally:
            waiter.cancel()

    async def _stop_client(self, client: Any, task: asyncio.Future[Any] | None) -> None:
        self._stopping = True  # events the stop itself causes change nothing
        self._link_up = False
        await self._gate.idle(CALLS_GRACE)
        try:
            await asyncio.wait_for(client.stop(), STOP_TIMEOUT)
        except Exception as exc:
            log.warning("stopping the client failed: %s", exc, extra={"event": "stop_failed"})
        if task is None:
            return
        if not task.done() and task is not self._given_up:
            await asyncio.wait({task}, timeout=self.stop_wait)
        if not task.done():
            self._given_up = task
            log.warning(
                "the stopped client's connect call did not return (whatsmeow's QR loop "
                "cannot be cancelled)",
                extra={"event": "stop_stuck"},
            )
        elif not task.cancelled():
            task.exception()  # a stopped client's error is no news

    def remove_auth(self) -> None:
        """Delete everything in `tokens/<name>/` (never with a client still running) and
        forget the device (in the store, whatsmeow deleted it at the logout)."""
        self.auth.forget()
        shutil.rmtree(self.auth_dir, ignore_errors=True)
        self.auth_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _finish(self, step: Next) -> None:
        """End the current client from an event handler (the loop does the stopping)."""
        self._end = step
        self._interrupt.set()

    # -- events from whatsmeow, in order on our loop --------------------------------------

    def _register(self, client: Any) -> None:
        neonize_client.register_events(client, self._queue_qr, self._pump.put)

    async def _queue_qr(self, client: Any, data: bytes) -> None:
        await self._pump.put(client, QrCode(data))

    def _current(self, client: Any) -> bool:
        return client is self._client and not self._stopping and not self._closing

    async def handle(self, client: Any, event: Any) -> None:
        """One event from ``client``. Messages and receipts are facts and are reported
        from any client; state changes only from the current one."""
        from neonize.proto import Neonize_pb2 as pb

        if isinstance(event, pb.Message):
            await self._on_message(client, event)
        elif isinstance(event, pb.Receipt):
            await self._on_receipt(client, event)
        elif not self._current(client):
            return
        elif isinstance(event, QrCode):
            valid = self.watchdog.qr_shown()
            self._rearmed.set()
            payload = event.payload.decode("utf-8", "replace")
            await self.events.qr(payload, utcnow() + timedelta(seconds=valid))
        elif isinstance(event, pb.Connected):
            await self._on_connected(client)
        elif isinstance(event, pb.PairStatus) and event.Status == pb.PairStatus.SUCCESS:
            await self.auth.pair_success(event.ID, self.events)
        else:
            await self.apply(transition_for(event))

    async def _on_connected(self, client: Any) -> None:
        self.watchdog.disarm()
        self.backoff.reset()
        me = await own_device(client, self._gate)
        self._phone = (me.JID.User if me is not None else "") or self._phone
        self._link_up = True
        jid = self.auth.linked(me.JID if me is not None else None)  # kept with the report
        await self.events.connected(self._phone or "", *((jid,) if jid else ()))

    async def apply(self, transition: Transition | None) -> None:
        """Act on one event's meaning: status, error webhook, forgetting the auth."""
        if transition is None:
            return
        if transition.status is not None:
            self._link_up = transition.status == Status.CONNECTED
            if transition.status == Status.CONNECTED:
                await self.events.connected(self._phone or "")
            else:
                await self.events.disconnected(transition.status, transition.reason)
        if transition.code:
            await self.events.error(
                transition.code, transition.reason, recoverable=transition.recoverable
            )
        if transition.retry:
            self._finish(self._retry(transition.reason))
        elif transition.forget_auth or transition.stop:
            self._finish(Next(None, forget_auth=transition.forget_auth))

    def _live(self, client: Any) -> bool:
        """The Go side of ``client`` may be called (it is the current, linked one)."""
        return self._current(client) and self._link_up

    async def _phones(self, client: Any, source: Any, *, sender: bool) -> dict[str, str]:
        lids = lids_to_resolve(source, sender=sender)
        if not lids or not self._live(client):
            return {}
        async with self._gate.call():
            return await neonize_ops.phones_of(client, [j.User for j in lids])

    async def _on_message(self, client: Any, event: Any) -> None:
        phones = await self._phones(client, event.Info.MessageSource, sender=True)
        message = inbound_from(event, self._phone or "", phones)
        if message is None:
            return
        if media_of(event.Message) is not None:
            async with self._gate.call():
                found = await neonize_ops.media_for(client, event.Message, live=self._live(client))
            message = dataclasses.replace(message, media=found)
        await self.events.message_received(message)

    async def _on_receipt(self, client: Any, receipt: Any) -> None:
        status = ack_status(receipt)
        if status is None:
            return
        to = ack_chat(receipt, await self._phones(client, receipt.MessageSource, sender=False))
        for message_id in receipt.MessageIDs:
            await self.events.message_ack(message_id, status, to)

    async def start(self) -> None:
        self._start.set()

    async def logout(self) -> None:
        client = self._client
        if client is not None and self._link_up:
            try:
                async with self._gate.call():
                    await client.logout()
            except Exception as exc:
                log.warning("logout on WhatsApp failed: %s", exc, extra={"event": "logout_failed"})
        self._link_up = False
        self._phone = None
        await self.events.logged_out()
        if self._active:
            # The loop stops the client, removes the auth and pairs again (a new QR).
            self._finish(Next(forget_auth=True))
        else:
            self._forget = True
            self._start.set()  # waiting between attempts: pair again now

    async def close(self) -> None:
        """Stop the client (the link is down before the API closes), then hand what
        whatsmeow already delivered to the runner before it seals the outbox."""
        self._closing = True
        self._link_up = False
        client, task = self._client, self._conn
        if client is not None and task is not None and not task.done():
            await self._stop_client(client, task)
        await self._pump.close(DRAIN_TIMEOUT)
