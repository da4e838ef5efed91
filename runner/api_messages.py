"""Routes that act on WhatsApp: send, check a number, contacts, pairing, and the sim's
own test hooks. Connector errors become the HTTP answers the seed describes."""

from __future__ import annotations

import functools
import logging
import math
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ecosystem.errors import (
    InvalidValue,
    SessionNotFound,
    StateDirError,
    StoreError,
    ZapvisorError,
)
from runner import media
from runner.connectors.base import (
    Media,
    NotConnected,
    NotSupported,
    Recipient,
    UpstreamError,
)
from runner.http import Handler, HTTPError, Request, Response
from runner.openapi import Route, reply

if TYPE_CHECKING:
    from runner import api_models as m
    from runner.core import Runner
else:
    from runner.openapi import models as m

log = logging.getLogger("runner.api")


def guard(runner: Runner, handler: Handler) -> Handler:
    """Turn the errors a handler may meet into answers with the right status."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except NotConnected as exc:
            status = 409 if exc.exit_code == 75 else 503
            raise HTTPError(
                status,
                str(exc),
                data={"status": str(runner.live.status), "reconnectRequired": status == 503},
            ) from None
        except NotSupported as exc:
            raise HTTPError(501, str(exc)) from None
        except InvalidValue as exc:
            raise HTTPError(400, str(exc)) from None
        except UpstreamError as exc:
            raise HTTPError(502, str(exc)) from None
        except StoreError as exc:
            log.warning("store unavailable: %s", exc, extra={"event": "store_error"})
            raise HTTPError(503, "the session store is unavailable; try again") from None
        except SessionNotFound as exc:
            raise HTTPError(404, str(exc)) from None
        except ZapvisorError as exc:
            raise HTTPError(409, str(exc)) from None

    return wrapped


class MessageRoutes:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self._allow_private = runner.settings.media_allow_private

    def routes(self) -> list[Route]:
        send = (400, 501, 502, 503)
        return [
            Route(
                "POST",
                "/send-message",
                "sendMessage",
                "send a text message",
                self.send_message,
                "SentMessage",
                "SendMessage",
                send,
            ),
            Route(
                "POST",
                "/send-image",
                "sendImage",
                "send an image downloaded from imageUrl",
                self.send_image,
                "SentMessage",
                "SendImage",
                send,
            ),
            Route(
                "POST",
                "/send-file",
                "sendFile",
                "send a document downloaded from fileUrl",
                self.send_file,
                "SentMessage",
                "SendFile",
                send,
            ),
            Route(
                "GET",
                "/check-number/{phone}",
                "checkNumber",
                "is this number on WhatsApp",
                self.check_number,
                "NumberCheck",
                None,
                send,
            ),
            Route(
                "GET",
                "/contacts",
                "contacts",
                "the session's contacts",
                self.contacts,
                "Contacts",
                None,
                (501, 502, 503),
            ),
            Route(
                "POST",
                "/pair-phone",
                "pairPhone",
                "a pairing code to type on the phone, instead of scanning the QR",
                self.pair_phone,
                "PairCode",
                "PairPhone",
                (400, 409, 501, 502),
            ),
            Route(
                "POST",
                "/sim/scan",
                "simScan",
                "sim connector: the phone scans the QR",
                self.sim_scan,
                "SimAnswer",
                None,
                (409,),
            ),
            Route(
                "POST",
                "/sim/inbound",
                "simInbound",
                "sim connector: a message arrives",
                self.sim_inbound,
                "SimAnswer",
                "SimInbound",
                (400, 409, 503),
            ),
            Route(
                "POST",
                "/sim/disconnect",
                "simDisconnect",
                "sim connector: the link drops for a while",
                self.sim_disconnect,
                "SimAnswer",
                "SimDisconnect",
                (400, 409, 503),
            ),
        ]

    def _media_url(self, url: str) -> str:
        # Refused before any connector runs (the sim too); names are checked once
        # resolved, when the media is fetched.
        media.check_url(url, self._allow_private)
        return url

    async def _outbound(self) -> None:
        """The session's outbound limit (timing_config), shared with its bot's replies."""
        wait = await self.runner.bot.outbound_wait()
        if wait:
            seconds = math.ceil(wait)
            per_minute = self.runner.bot.outbound.per_minute
            raise HTTPError(
                429,
                f"over the session's outbound limit of {per_minute} messages per minute; "
                f"retry in {seconds} s",
                Retry_After=str(seconds),
            )

    async def _sent(self, sent: Any) -> Response:
        await self.runner.events.message_sent()
        return reply(m.SentMessage.model_validate(sent.to_json()))

    async def send_message(self, _: Request, body: m.SendMessage) -> Response:
        to = Recipient.parse(body.phone, body.isGroup)
        await self._outbound()
        return await self._sent(await self.runner.connector.send_text(to, body.message))

    async def send_image(self, _: Request, body: m.SendImage) -> Response:
        to = Recipient.parse(body.phone, body.isGroup)
        image = Media("image", self._media_url(body.imageUrl), caption=body.caption)
        await self._outbound()
        return await self._sent(await self.runner.connector.send_media(to, image))

    async def send_file(self, _: Request, body: m.SendFile) -> Response:
        to = Recipient.parse(body.phone, body.isGroup)
        url = self._media_url(body.fileUrl)
        default = urlsplit(url).path.rsplit("/", 1)[-1] or "file"
        file = Media("file", url, caption=body.caption, file_name=body.fileName or default)
        await self._outbound()
        return await self._sent(await self.runner.connector.send_media(to, file))

    async def check_number(self, request: Request, _: None) -> Response:
        found = await self.runner.connector.check_number(request.params["phone"])
        return reply(m.NumberCheck.model_validate(found))

    async def contacts(self, _: Request, __: None) -> Response:
        found = await self.runner.connector.contacts()
        return reply(m.Contacts(success=True, count=len(found), contacts=found))  # type: ignore[arg-type]

    async def pair_phone(self, _: Request, body: m.PairPhone) -> Response:
        phone = Recipient.parse(body.phone).user
        connector = self.runner.connector
        code = await connector.pair_phone(phone)
        expires = connector.pair_code_expires_at()
        return reply(
            m.PairCode(
                success=True,
                sessionId=self.runner.name,
                phone=phone,
                code=code,
                expiresAt=expires.isoformat(timespec="seconds").replace("+00:00", "Z"),
                message="on the phone: WhatsApp > Linked devices > Link a device > "
                "Link with phone number instead, then type the code",
            )
        )

    # -- the sim connector's test hooks ----------------------------------------------

    def _sim(self) -> Any:
        from runner.connectors.sim import SimConnector

        connector = self.runner.connector
        if not isinstance(connector, SimConnector):
            raise HTTPError(409, f"session {self.runner.name} does not use the sim connector")
        return connector

    async def sim_scan(self, _: Request, __: None) -> Response:
        try:
            await self._sim().scan()
        except StateDirError as exc:
            raise HTTPError(507, f"not paired: {exc}") from None
        return reply(m.SimAnswer(success=True, sessionId=self.runner.name))

    async def sim_inbound(self, _: Request, body: m.SimInbound) -> Response:
        sender = body.sender if isinstance(body.sender, str) else ""
        message = await self._sim().inbound(sender, body.body, body.name)
        return reply(m.SimAnswer(success=True, message=message.to_json()))

    async def sim_disconnect(self, _: Request, body: m.SimDisconnect) -> Response:
        await self._sim().drop(body.kind, body.seconds)
        return reply(m.SimAnswer(success=True, status=self.runner.live.status))
