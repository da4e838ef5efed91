"""A simulated phone: the whole pairing life cycle without WhatsApp.

It shows a QR payload shaped like WhatsApp's (``2@ref,noise,identity,adv``, 265
characters), rotates it every ``ZAPVISOR_SIM_QR_SECONDS``, pairs when "scanned"
(`zapvisor sim-scan NAME` or ``POST /sim/scan``) with a phone number derived from the
session name, and keeps its "auth" in `tokens/<name>/sim-auth.json` (or in the store,
for a session whose auth lives there) so a restart reconnects without a new QR.
Pairing by number works as with WhatsApp: `POST /pair-phone` gives a deterministic
8-character code, valid as long as neonize's, and a scan within that time stands for
the code typed on the phone: the session links to that number. Payloads are
deterministic: the same session and rotation number always give the same payload.

Connected, it holds a link to a simulated WhatsApp server (sim_server.py) that allows
one connection per device: a second connection of the same device replaces this one,
which then stops and never reconnects by itself, as with WhatsApp's StreamReplaced.

Once paired it behaves like a phone on the network: a message sent gets the `sent`,
`delivered` and `read` acks; an inbound message can be injected (``POST /sim/inbound``)
and the link dropped for a while (``POST /sim/disconnect``), so every webhook and state
path runs end to end without WhatsApp. Media URLs are never downloaded.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ecosystem.errors import InvalidValue, StateDirError, ZapvisorError
from ecosystem.lease import SIM_ONE_HOST_BEAT_SECONDS
from ecosystem.settings import Settings
from ecosystem.states import Status
from runner.connectors.base import (
    ConnectorEvents,
    Inbound,
    Media,
    NotConnected,
    Recipient,
    Sent,
)
from runner.connectors.sim_auth import SimAuth
from runner.connectors.sim_codes import sim_pair_code, sim_payload, sim_phone

log = logging.getLogger("runner.sim")
STORE_RETRY_SECONDS = 2.0


ACK_STEPS = (("sent", 0.0), ("delivered", 0.05), ("read", 0.1))
"""The acks a simulated recipient sends, and when (seconds after the send)."""

SENT_KEPT = 1000
"""Entries of what the simulated phone sent that GET /sim/sent keeps (the newest)."""

SIM_CONTACTS = (("5511900000001", "Maria Souza"), ("5511900000002", "João Silva"))


class NotWaitingForScan(NotConnected):
    exit_code = 75


class SimConnector(SimAuth):
    kind = "sim"

    def __init__(
        self, session: str, auth_dir: Path, events: ConnectorEvents, settings: Settings
    ) -> None:
        super().__init__(session, auth_dir, events, settings)
        self._scanned = asyncio.Event()
        self._scan_outcome: asyncio.Future[None] | None = None
        self._logged_out = asyncio.Event()
        self._waiting = False
        self._phone: str | None = None
        self._pair_phone: str | None = None
        self._pair_until = 0.0
        self._link_up = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._contacts: dict[str, str] = dict(SIM_CONTACTS)
        self.sent: deque[dict[str, Any]] = deque(maxlen=SENT_KEPT)
        """What the simulated phone sent, typed and read, oldest first (GET /sim/sent)."""
        self._restart = asyncio.Event()
        self._link: int | None = None

    async def run(self) -> None:
        while True:
            try:
                found = await self._load_auth()
                phone, device = found if found else await self._pair()
            except (ValueError, KeyError, TypeError) as exc:
                await self.events.failed(
                    f"auth in {self._where()} is corrupt ({exc}); "
                    f"`zapvisor logout {self.session}` clears it and shows a new QR"
                )
                await self._wait_logout()
                continue
            except ZapvisorError as exc:  # auth in the store, and the store is down
                await self.events.disconnected(
                    Status.RECONNECTING,
                    f"cannot read or save its auth in the store ({exc}); retrying",
                )
                await asyncio.sleep(STORE_RETRY_SECONDS)
                continue
            await asyncio.sleep(0.05)  # the simulated handshake
            self._phone = phone
            self._link = await self._open_link(device)
            self._link_up = True
            await self.events.connected(phone)
            ended = await self._hold_link(device)
            self._link_up = False
            self._link = None
            if ended == "replaced":
                # WhatsApp's StreamReplaced: never reconnect by itself (POST /start does)
                self._restart.clear()
                await self._restart.wait()

    async def _pair(self) -> tuple[str, str]:
        seq = 0
        self._scanned.clear()
        self._waiting = True
        try:
            while True:
                interval = self.settings.sim_qr_seconds
                expires = datetime.now(UTC) + timedelta(seconds=interval)
                await self.events.qr(sim_payload(self.session, seq), expires)
                try:
                    await asyncio.wait_for(self._scanned.wait(), interval)
                except TimeoutError:
                    seq += 1
                    continue
                # A pairing code typed in time links its number; else the QR was scanned.
                by_code = self._pair_phone and time.monotonic() < self._pair_until
                phone = (self._pair_phone if by_code else None) or sim_phone(self.session)
                try:
                    device = await self._save_auth(phone)
                except StateDirError as exc:
                    # Not paired after all: a restart would not find the auth. Say why
                    # and show a new QR (what WhatsApp does when a pairing fails).
                    self._settle_scan(exc)
                    await self.events.failed(f"pairing lost: {exc}")
                    seq += 1
                    self._scanned.clear()
                    continue
                self._settle_scan(None)
                log.info("paired", extra={"event": "paired", "phone": phone})
                return phone, device
        finally:
            self._waiting = False
            self._pair_phone = None
            self._settle_scan(NotWaitingForScan(f"session {self.session} stopped pairing"))

    def _settle_scan(self, error: Exception | None) -> None:
        outcome, self._scan_outcome = self._scan_outcome, None
        if outcome is None or outcome.done():
            return
        if error is None:
            outcome.set_result(None)
        else:
            outcome.set_exception(error)

    # -- the link to the simulated server --------------------------------------------

    async def _open_link(self, device: str) -> int | None:
        ctx = self.context
        if ctx is None or ctx.sim_server is None:
            return None
        return await ctx.sim_server.connect(device, self.session, ctx.epoch)

    async def _hold_link(self, device: str) -> str:
        """Until a logout ("logout") or another connection of this device replaces this
        one ("replaced"), beating while the link is up and the lease allows it."""
        ctx = self.context
        server = ctx.sim_server if ctx is not None else None
        every = server.beat_every if server is not None else SIM_ONE_HOST_BEAT_SECONDS
        while True:
            try:
                await asyncio.wait_for(self._logged_out.wait(), every)
                self._logged_out.clear()
                return "logout"
            except TimeoutError:
                pass
            if ctx is None or ctx.sim_server is None or not ctx.sim_server.available:
                continue
            if not self._link_up or not ctx.may_drive():
                continue  # dropped, or the lease lapsed: the runner is closing us
            link = self._link
            if link is None:  # the server did not answer when we connected
                self._link = await self._open_link(device)
                continue
            still_open, why, by = await ctx.sim_server.beat(link)
            if still_open:
                continue
            reason = f"another client uses these credentials (on {by or 'another host'})"
            log.error("link %s: %s", why, reason, extra={"event": "stream_replaced"})
            await self.events.disconnected(Status.DISCONNECTED, f"replaced: {reason}")
            await self.events.error("STREAM_REPLACED", reason, recoverable=False)
            return "replaced"

    async def _wait_logout(self) -> None:
        await self._logged_out.wait()
        self._logged_out.clear()

    async def scan(self) -> None:
        """The simulated phone scans the QR on show; returns once the pairing is saved,
        raises StateDirError when it could not be (a full disk: not paired)."""
        if not self._waiting:
            raise NotWaitingForScan(f"session {self.session} is not waiting for a QR scan")
        if self._scan_outcome is None or self._scan_outcome.done():
            self._scan_outcome = asyncio.get_running_loop().create_future()
        outcome = self._scan_outcome
        self._scanned.set()
        await asyncio.shield(outcome)

    async def logout(self) -> None:
        self._link_up = False
        await self._forget_auth()
        await self._close_link("logout")
        await self.events.logged_out()
        self._logged_out.set()

    async def start(self) -> None:
        self._restart.set()

    async def close(self) -> None:
        # Awaited, not just cancelled: an ack or a reconnect still running after close
        # would emit into an outbox the runner is about to seal.
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        ctx = self.context
        await self._close_link("closed" if ctx is None or ctx.may_drive() else "lease")

    async def _close_link(self, reason: str) -> None:
        link, self._link = self._link, None
        ctx = self.context
        if link is not None and ctx is not None and ctx.sim_server is not None:
            await ctx.sim_server.close(link, reason)

    # -- a phone on the network ----------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _require_link(self) -> str:
        if not self._link_up or self._phone is None:
            raise NotConnected(f"session {self.session} is not connected")
        return self._phone

    async def send_text(self, to: Recipient, text: str) -> Sent:
        self._require_link()
        sent = Sent("3EB0" + secrets.token_hex(8).upper(), to.jid)
        self._record("text", to.jid, id=sent.id, body=text)
        if not to.group:
            self._contacts.setdefault(to.user, "")
        self._spawn(self._acks(sent))
        return sent

    def _record(self, kind: str, chat: str, **fields: Any) -> None:
        at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self.sent.append({"kind": kind, "to": chat, "at": at, **fields})

    async def typing(self, chat: str, on: bool) -> None:
        self._require_link()
        self._record("typing" if on else "paused", chat)

    async def mark_read(self, message: Inbound) -> None:
        self._require_link()
        self._record("read", message.chat, id=message.id)

    async def send_media(self, to: Recipient, media: Media) -> Sent:
        return await self.send_text(to, media.caption)

    async def _acks(self, sent: Sent) -> None:
        start = time.monotonic()
        for status, at in ACK_STEPS:
            await asyncio.sleep(max(0.0, start + at - time.monotonic()))
            await self.events.message_ack(sent.id, status, sent.to)

    async def inbound(self, sender: str, body: str, name: str = "") -> Inbound:
        """A message from ``sender`` arrives (what `POST /sim/inbound` does)."""
        me = self._require_link()
        who = Recipient.parse(sender)
        message = Inbound(
            id="3EB0" + secrets.token_hex(8).upper(),
            sender=who.user,
            chat=who.jid,
            to=Recipient(me).jid,
            body=body,
            timestamp=int(time.time()),
            is_group=who.group,
            sender_name=name,
        )
        self._contacts[who.user] = name or self._contacts.get(who.user, "")
        await self.events.message_received(message)
        return message

    async def drop(self, kind: str, seconds: float) -> None:
        """The link drops for ``seconds``: the network (`reconnecting`) or the phone
        (`phone_disconnected`); then it comes back by itself."""
        phone = self._require_link()
        if kind not in ("network", "phone"):
            raise InvalidValue("kind must be 'network' or 'phone'")
        self._link_up = False
        status = Status.RECONNECTING if kind == "network" else Status.PHONE_DISCONNECTED
        reason = "network lost" if kind == "network" else "the phone is offline"
        await self.events.disconnected(status, reason)

        async def back() -> None:
            await asyncio.sleep(seconds)
            if await self._load_auth() is not None:
                self._link_up = True
                await self.events.connected(phone)

        self._spawn(back())

    async def check_number(self, phone: str) -> dict[str, Any]:
        who = Recipient.parse(phone)
        valid = 10 <= len(who.user) <= 15
        return {"phone": who.user, "valid": valid, "canReceiveMessage": valid, "isBusiness": False}

    async def contacts(self) -> list[dict[str, Any]]:
        self._require_link()
        return [
            {
                "id": f"{phone}@c.us",
                "phone": phone,
                "name": name,
                "pushname": name.split(" ")[0] if name else "",
                "isBusiness": False,
            }
            for phone, name in sorted(self._contacts.items())
        ]

    async def pair_phone(self, phone: str) -> str:
        if not self._waiting:
            raise NotWaitingForScan(f"session {self.session} is not waiting to be paired")
        who = Recipient.parse(phone)
        self._pair_phone = who.user
        self._pair_until = time.monotonic() + self.pair_code_seconds
        return sim_pair_code(self.session, who.user)
