"""The real WhatsApp link: neonize (Python over whatsmeow, the Go library in its wheel).

Auth lives in `tokens/<name>/neonize.db`, so a restart reconnects without a new QR. The
phone lists this device as "zapvisor <name>". whatsmeow reconnects by itself once
connected, but a failed first connect is never retried and the QR window ends in
silence: this connector retries with capped exponential backoff (status
`reconnecting`) and runs its own QR watchdog. Anything that needs a logged-in device is
refused unless the session is connected: whatsmeow's Go side crashes the process on
some of those calls otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from ecosystem.models import utcnow
from ecosystem.settings import Settings
from ecosystem.states import Status
from runner import media as media_fetch
from runner.connectors.base import (
    Connector,
    ConnectorEvents,
    Media,
    NotConnected,
    Recipient,
    Sent,
    UpstreamError,
)
from runner.connectors.neonize_map import (
    PAIR_CODE_SECONDS,
    Backoff,
    QrWatchdog,
    Transition,
    ack_status,
    inbound_from,
    transition_for,
)

log = logging.getLogger("runner.neonize")
AUTH_DB = "neonize.db"
STOP_TIMEOUT = 10.0


def quiet_neonize_logging() -> None:
    """whatsmeow's debug chatter and neonize's ffmpeg warning (we send no media that
    needs ffmpeg) stay out of the log; its INFO and above stay in."""
    logging.getLogger("whatsmeow").setLevel(logging.INFO)
    logging.getLogger("neonize.utils.log").setLevel(logging.INFO)
    logging.getLogger("neonize.utils.ffmpeg").setLevel(logging.ERROR)


class NeonizeConnector(Connector):
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
        client_factory: Callable[[str, str, str], Any] | None = None,
    ) -> None:
        super().__init__(session, auth_dir, events, settings)
        self.backoff = backoff or Backoff()
        self.watchdog = watchdog or QrWatchdog()
        self._factory = client_factory or _new_client
        self._client: Any = None
        self._generation = 0
        self._phone: str | None = None
        self._link_up = False
        self._interrupt = asyncio.Event()
        self._start = asyncio.Event()
        self._end: tuple[str, Transition | None] | None = None
        self._closing = False
        self._active = False
        self._stopping = False

    @property
    def db_path(self) -> Path:
        return self.auth_dir / AUTH_DB

    # -- the life of the link ------------------------------------------------------

    async def run(self) -> None:
        quiet_neonize_logging()
        self.auth_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.auth_dir.chmod(0o700)
        while not self._closing:
            outcome, reason = await self._one_client()
            if outcome == "retry":
                delay = self.backoff.next()
                log.warning(
                    "cannot connect to WhatsApp (%s); retrying in %g s",
                    reason,
                    delay,
                    extra={"event": "reconnect_wait", "delay": delay},
                )
                await self.events.disconnected(
                    Status.RECONNECTING, f"{reason}; retrying in {delay:g} s"
                )
                await self._wait_start(delay)
            elif outcome == "idle":
                await self._wait_start(None)
            # "again": connect at once (after a logout, a new pairing)

    async def _wait_start(self, timeout: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._start.wait(), timeout)
        if self._start.is_set():
            self._start.clear()
            self.backoff.reset()

    async def _one_client(self) -> tuple[str, str]:
        self._generation += 1
        self._interrupt.clear()
        self._end = None
        self._stopping = False
        self.watchdog.disarm()
        client = self._factory(
            str(self.db_path), f"{self.session}#{self._generation}", self.session
        )
        self._register(client)
        self._client = client
        self._active = True
        try:
            task = await client.connect()
        except Exception as exc:
            self._active = False
            return "retry", _short(exc)
        waiter = asyncio.ensure_future(self._interrupt.wait())
        try:
            while True:
                # While a QR is on show, look at the watchdog every second (its clock
                # may not be the loop's); otherwise sleep until something happens.
                remaining = self.watchdog.remaining()
                await asyncio.wait(
                    {task, waiter},
                    timeout=None if remaining is None else min(remaining, 1.0),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if self._end is not None:
                    if not task.done():
                        await self._stop_client(client, task)
                    return self._ended(self._end)
                if task.done():
                    error = None if task.cancelled() else task.exception()
                    return "retry", _short(error) if error else "the connection ended"
                if self.watchdog.expired():
                    waited = (
                        f"the QR was not scanned ({self.watchdog.shown} codes shown) "
                        "nor a pairing code entered"
                    )
                    await self._stop_client(client, task)
                    self.watchdog.disarm()
                    await self.events.disconnected(
                        Status.DISCONNECTED,
                        f"{waited}; POST /start or `zapvisor restart {self.session}` "
                        "shows a new QR",
                    )
                    return "idle", ""
        finally:
            waiter.cancel()
            self._link_up = False
            self._active = False

    async def _stop_client(self, client: Any, task: asyncio.Future[Any] | None) -> None:
        self._stopping = True  # events the stop itself causes change nothing
        try:
            await asyncio.wait_for(client.stop(), STOP_TIMEOUT)
            if task is not None:
                await asyncio.wait({task}, timeout=STOP_TIMEOUT)
        except Exception as exc:
            log.warning("stopping the client failed: %s", exc, extra={"event": "stop_failed"})

    def _ended(self, end: tuple[str, Transition | None]) -> tuple[str, str]:
        outcome, transition = end
        if transition is not None and transition.forget_auth:
            self._phone = None
            self.remove_auth()
            log.info("auth removed", extra={"event": "auth_removed"})
        return outcome, ""

    def remove_auth(self) -> None:
        """Delete everything in `tokens/<name>/` (the client is stopped first)."""
        shutil.rmtree(self.auth_dir, ignore_errors=True)
        self.auth_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _finish(self, outcome: str, transition: Transition | None = None) -> None:
        """End the current client from an event handler (the loop does the stopping)."""
        self._end = (outcome, transition)
        self._interrupt.set()

    # -- events from whatsmeow (run on our loop) ---------------------------------------

    def _register(self, client: Any) -> None:
        from neonize.aioze import events as ev

        client.event.qr(self._on_qr)
        client.event(ev.ConnectedEv)(self._on_connected)
        client.event(ev.MessageEv)(self._on_message)
        client.event(ev.ReceiptEv)(self._on_receipt)
        for kind in (
            ev.DisconnectedEv,
            ev.LoggedOutEv,
            ev.ConnectFailureEv,
            ev.StreamReplacedEv,
            ev.TemporaryBanEv,
            ev.KeepAliveTimeoutEv,
            ev.KeepAliveRestoredEv,
            ev.ClientOutdatedEv,
            ev.StreamErrorEv,
            ev.PairStatusEv,
        ):
            client.event(kind)(self._on_state_event)

    async def _on_qr(self, _: Any, data: bytes) -> None:
        valid = self.watchdog.qr_shown()
        await self.events.qr(data.decode("utf-8", "replace"), utcnow() + timedelta(seconds=valid))

    async def _on_connected(self, client: Any, _: Any) -> None:
        self.watchdog.disarm()
        self.backoff.reset()
        try:
            me = await client.get_me()
            self._phone = me.JID.User or self._phone
        except Exception as exc:
            log.warning("cannot read own number: %s", exc, extra={"event": "get_me_failed"})
        self._link_up = True
        await self.events.connected(self._phone or "")

    async def _on_state_event(self, client: Any, event: Any) -> None:
        if client is not self._client or self._stopping:
            return  # a client we are stopping, or an old one
        await self.apply(transition_for(event))

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
        if transition.forget_auth or transition.stop:
            self._finish("idle", transition)

    async def _on_message(self, _: Any, event: Any) -> None:
        message = inbound_from(event, self._phone or "")
        if message is not None:
            await self.events.message_received(message)

    async def _on_receipt(self, _: Any, receipt: Any) -> None:
        status = ack_status(receipt)
        if status is None:
            return
        chat = receipt.MessageSource.Chat
        to = Recipient(chat.User, chat.Server == "g.us").jid
        for message_id in receipt.MessageIDs:
            await self.events.message_ack(message_id, status, to)

    # -- what the API asks for ---------------------------------------------------------

    def _connected_client(self) -> Any:
        if not self._link_up or self._client is None:
            raise NotConnected(f"session {self.session} is not connected to WhatsApp")
        return self._client

    async def send_text(self, to: Recipient, text: str) -> Sent:
        client = self._connected_client()
        try:
            resp = await client.send_message(_jid(to), text)
        except Exception as exc:
            raise UpstreamError(f"WhatsApp did not take the message: {_short(exc)}") from None
        return await self._sent(resp.ID, to)

    async def send_media(self, to: Recipient, media: Media) -> Sent:
        client = self._connected_client()
        data, mimetype = await asyncio.to_thread(
            functools.partial(
                media_fetch.fetch, media.url, allow_private=self.settings.media_allow_private
            )
        )
        try:
            if media.kind == "image":
                resp = await client.send_image(_jid(to), data, caption=media.caption or None)
            else:
                resp = await client.send_document(
                    _jid(to),
                    data,
                    caption=media.caption or None,
                    title=media.file_name,
                    filename=media.file_name,
                    mimetype=mimetype,
                )
        except Exception as exc:
            raise UpstreamError(f"WhatsApp did not take the {media.kind}: {_short(exc)}") from None
        return await self._sent(resp.ID, to)

    async def _sent(self, message_id: str, to: Recipient) -> Sent:
        sent = Sent(message_id, to.jid)
        await self.events.message_ack(sent.id, "sent", sent.to)
        return sent

    async def check_number(self, phone: str) -> dict[str, Any]:
        who = Recipient.parse(phone)
        client = self._connected_client()
        try:
            found = await client.is_on_whatsapp(who.user)
        except Exception as exc:
            raise UpstreamError(f"WhatsApp did not answer: {_short(exc)}") from None
        hit = found[0] if found else None
        valid = bool(hit and hit.IsIn)
        return {
            "phone": who.user,
            "valid": valid,
            "canReceiveMessage": valid,
            "isBusiness": bool(hit is not None and hit.HasField("VerifiedName")),
        }

    async def contacts(self) -> list[dict[str, Any]]:
        client = self._connected_client()
        try:
            found = await client.contact.get_all_contacts()
        except Exception as exc:
            raise UpstreamError(f"cannot read contacts: {_short(exc)}") from None
        out = []
        for contact in found:
            info = contact.Info
            out.append(
                {
                    "id": Recipient(contact.JID.User).jid,
                    "phone": contact.JID.User,
                    "name": info.FullName or info.FirstName,
                    "pushname": info.PushName,
                    "isBusiness": bool(info.BusinessName),
                }
            )
        return out

    async def pair_phone(self, phone: str) -> str:
        client = self._client
        if client is None or self._link_up or self.watchdog.deadline is None:
            raise NotConnected(
                f"session {self.session} is not waiting to be paired (it must show a QR)"
            )
        try:
            code: str = await client.PairPhone(phone, True)
        except Exception as exc:
            raise UpstreamError(f"WhatsApp gave no pairing code: {_short(exc)}") from None
        self.watchdog.pairing_code_issued()
        log.info("pairing code issued", extra={"event": "pair_code"})
        return code

    async def start(self) -> None:
        self._start.set()

    async def logout(self) -> None:
        client = self._client
        if client is not None and self._link_up:
            try:
                await client.logout()
            except Exception as exc:
                log.warning("logout on WhatsApp failed: %s", exc, extra={"event": "logout_failed"})
        self._link_up = False
        self._phone = None
        await self.events.logged_out()
        if self._active:
            # The loop stops the client, removes the auth and pairs again (a new QR).
            self._finish("again", Transition(None, forget_auth=True))
        else:
            self.remove_auth()
            self._start.set()  # waiting between attempts: pair again now

    async def close(self) -> None:
        self._closing = True
        self._stopping = True
        if self._client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._client.stop(), STOP_TIMEOUT)


def _new_client(db: str, uuid: str, session: str) -> Any:
    from neonize.aioze.client import NewAClient
    from neonize.proto.waCompanionReg.WAWebProtobufsCompanionReg_pb2 import DeviceProps

    props = DeviceProps(os=f"zapvisor {session}", platformType=DeviceProps.DESKTOP)
    return NewAClient(db, props=props, uuid=uuid)


def _jid(to: Recipient) -> Any:
    from neonize.utils.jid import build_jid

    return build_jid(to.user, "g.us" if to.group else "s.whatsapp.net")


def _short(exc: BaseException | None) -> str:
    text = str(exc) if exc is not None else ""
    return (text or type(exc).__name__)[:300]
