"""Connector events → live state, store and webhook events (the ConnectorEvents protocol)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ecosystem.session import utcnow
from ecosystem.states import Status
from runner.connectors.base import Inbound
from runner.outbox import Outbox
from runner.state import Reporter

log = logging.getLogger("runner")


def _png_field(payload: str) -> dict[str, str]:
    from ecosystem import qr  # qrcode costs memory in every idle runner: load on use

    return {"qrCode": qr.png_data_url(payload)}


def iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z") if value else None


class Events:
    def __init__(self, reporter: Reporter, outbox: Outbox) -> None:
        self.reporter = reporter
        self.outbox = outbox
        reporter.on_status = self._status_changed
        self.on_message: Callable[[Inbound], None] | None = None
        """Called with every inbound message once it is durable (the session's bot)."""
        self.on_activity: Callable[[], None] | None = None
        """Called when periodic work woke the loop up (a QR code rotating): the runner
        beats with it rather than waking up again for its heartbeat."""

    def _status_changed(self, before: Status, after: Status, reason: str | None) -> None:
        data: dict[str, Any] = {"status": str(after), "previousStatus": str(before)}
        if reason:
            data["reason"] = reason
        self.outbox.emit("connection_change", data)

    async def qr(self, payload: str, expires_at: datetime) -> None:
        # The first code of a pairing is news; its rotations (every 20 s, in each waiting
        # runner) would be lines supervisord wakes up to copy, hundreds a minute.
        rotated = self.reporter.live.status == Status.WAITING_SCAN
        if self.on_activity is not None:
            self.on_activity()
        log.log(
            logging.DEBUG if rotated else logging.INFO,
            "new QR code",
            extra={"event": "qr", "expires_at": expires_at.isoformat()},
        )
        await self.reporter.update(
            status=Status.WAITING_SCAN, qr_payload=payload, qr_expires_at=expires_at
        )
        # The PNG only for a receiver of qr_code events, made on the store thread: the
        # event loop keeps answering, and an idle runner never loads qrcode.
        self.outbox.emit(
            "qr_code",
            {"qr": payload, "expiresAt": iso(expires_at)},
            functools.partial(_png_field, payload),
        )

    async def connected(self, phone: str, device_jid: str | None = None) -> None:
        """``device_jid``: the whatsmeow device a store-auth neonize session opens from
        now on, written with the phone in one fenced report (None leaves it as it is)."""
        changes: dict[str, Any] = {"device_jid": device_jid} if device_jid else {}
        await self.reporter.update(
            status=Status.CONNECTED,
            phone=phone,
            connected_at=utcnow(),
            qr_payload=None,
            qr_expires_at=None,
            last_error=None,
            **changes,
        )

    async def device_linked(self, device_jid: str) -> None:
        """A pairing's device, saved before the link is up again (see connected)."""
        await self.reporter.update(device_jid=device_jid)

    async def disconnected(self, status: Status, reason: str) -> None:
        await self.reporter.update(
            status=status, last_error=reason or None, qr_payload=None, qr_expires_at=None
        )

    async def failed(self, message: str) -> None:
        log.error("%s", message, extra={"event": "error"})
        await self.reporter.update(
            status=Status.ERROR, last_error=message, qr_payload=None, qr_expires_at=None
        )
        self.outbox.emit("error", {"error": message, "code": "CONNECTOR", "recoverable": False})

    async def logged_out(self) -> None:
        log.info("logged out", extra={"event": "logged_out"})
        await self.reporter.update(
            status=Status.DISCONNECTED,
            phone=None,
            connected_at=None,
            qr_payload=None,
            qr_expires_at=None,
            device_jid=None,
        )

    async def message_received(self, message: Inbound) -> None:
        live = self.reporter.live
        await self.reporter.update(
            messages_received=live.messages_received + 1, last_activity_at=utcnow()
        )
        # Awaited: once the connector (or POST /sim/inbound) returns, the event is durable.
        await self.outbox.emit("message_received", {"message": message.to_json()})
        if self.on_message is not None:
            self.on_message(message)

    async def message_sent(self) -> None:
        live = self.reporter.live
        await self.reporter.update(messages_sent=live.messages_sent + 1, last_activity_at=utcnow())

    async def message_ack(self, message_id: str, status: str, chat: str) -> None:
        await self.outbox.emit(
            "message_ack", {"messageId": message_id, "status": status, "to": chat}
        )

    async def error(self, code: str, message: str, *, recoverable: bool) -> None:
        log.warning("%s", message, extra={"event": "session_error", "code": code})
        self.outbox.emit("error", {"error": message, "code": code, "recoverable": recoverable})
