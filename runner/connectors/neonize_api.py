"""The neonize connector's side facing the API: send, check a number, contacts, pair.

Calls reach the Go side only while the link is up and through the connector's call
gate (a stop waits for them); the life of the link is in neonize.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from ecosystem.session import utcnow
from runner import media as media_fetch
from runner.connectors import neonize_client, neonize_ops
from runner.connectors.base import (
    Connector,
    Media,
    NotConnected,
    Recipient,
    Sent,
    UpstreamError,
)
from runner.connectors.neonize_map import QrWatchdog
from runner.connectors.neonize_ops import short
from runner.connectors.neonize_pump import CallGate

log = logging.getLogger("runner.neonize")


class NeonizeRequests(Connector):
    """The API's requests; NeonizeConnector sets these up and keeps them current."""

    _client: Any
    _link_up: bool
    _gate: CallGate
    _pair_expires: datetime | None
    watchdog: QrWatchdog

    def _current(self, client: Any) -> bool:
        """``client`` is the connector's current client and is not being stopped."""
        raise NotImplementedError

    @contextlib.asynccontextmanager
    async def _connected(self) -> AsyncIterator[Any]:
        if not self._link_up or self._client is None:
            raise NotConnected(f"session {self.session} is not connected to WhatsApp")
        async with self._gate.call():
            yield self._client

    async def send_text(self, to: Recipient, text: str) -> Sent:
        async with self._connected() as client:
            message_id = await neonize_ops.send_text(client, to, text)
        return await self._sent(message_id, to)

    async def send_media(self, to: Recipient, media: Media) -> Sent:
        if not self._link_up:
            raise NotConnected(f"session {self.session} is not connected to WhatsApp")
        data, declared = await asyncio.to_thread(
            functools.partial(
                media_fetch.fetch, media.url, allow_private=self.settings.media_allow_private
            )
        )
        async with self._connected() as client:
            message_id = await neonize_ops.send_media(client, to, media, data, declared)
        return await self._sent(message_id, to)

    async def _sent(self, message_id: str, to: Recipient) -> Sent:
        sent = Sent(message_id, to.jid)
        await self.events.message_ack(sent.id, "sent", sent.to)
        return sent

    async def check_number(self, phone: str) -> dict[str, Any]:
        who = Recipient.parse(phone)
        async with self._connected() as client:
            return await neonize_ops.check_number(client, who)

    async def contacts(self) -> list[dict[str, Any]]:
        async with self._connected() as client:
            return await neonize_ops.contacts(client)

    async def pair_phone(self, phone: str) -> str:
        client = self._client
        waiting = client is not None and self._current(client) and not self._link_up
        if not waiting or self.watchdog.deadline is None:
            raise NotConnected(
                f"session {self.session} is not waiting to be paired (it must show a QR)"
            )
        try:
            async with self._gate.call():
                code = await neonize_client.pair_phone(client, phone)
        except Exception as exc:
            raise UpstreamError(f"WhatsApp gave no pairing code: {short(exc)}") from None
        valid = self.watchdog.pairing_code_issued()
        self._pair_expires = utcnow() + timedelta(seconds=valid)
        log.info("pairing code issued", extra={"event": "pair_code"})
        return code

    def pair_code_expires_at(self) -> datetime:
        return self._pair_expires or super().pair_code_expires_at()
