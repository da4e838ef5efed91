"""Routes that act on WhatsApp: send, check a number, contacts, pairing, and the sim's
own test hooks. Connector errors become the HTTP answers the seed describes."""

from __future__ import annotations

import functools
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ecosystem import jsonvalue
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
from runner.http import Handler, HTTPError, Request, Response, Router

if TYPE_CHECKING:
    from runner.core import Runner

log = logging.getLogger("runner.api")
MAX_TEXT = 65536


def body(request: Request) -> dict[str, Any]:
    """The request's JSON object; nesting past jsonvalue.MAX_DEPTH, NaN and the like
    are a 400 (a 100,000-deep body must not reach the recursion limit as a 500)."""
    if not request.body:
        return {}
    try:
        data = jsonvalue.loads(request.body, "the body")
    except jsonvalue.BadJSON as exc:
        raise HTTPError(400, str(exc)) from None
    if not isinstance(data, dict):
        raise HTTPError(400, "the body must be a JSON object")
    return data


def text_field(data: dict[str, Any], key: str, *, required: bool = False, limit: int = 1024) -> str:
    value = data.get(key)
    if value is None:
        if required:
            raise HTTPError(400, f"{key} is required")
        return ""
    if not isinstance(value, str):
        raise HTTPError(400, f"{key} must be a string")
    if required and not value.strip():
        raise HTTPError(400, f"{key} must not be empty")
    if len(value) > limit:
        raise HTTPError(400, f"{key} is {len(value)} characters; at most {limit}")
    return value


def url_field(data: dict[str, Any], key: str, *, allow_private: bool) -> str:
    value = text_field(data, key, required=True, limit=4096)
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise HTTPError(400, f"{key} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HTTPError(400, f"{key} must be an http:// or https:// URL")
    # Refused before any connector runs (the sim too); names are checked once
    # resolved, when the media is fetched.
    media.check_url(value, allow_private)
    return value


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

    def register(self, router: Router) -> None:
        routes: list[tuple[str, str, Handler]] = [
            ("POST", "/send-message", self.send_message),
            ("POST", "/send-image", self.send_image),
            ("POST", "/send-file", self.send_file),
            ("GET", "/check-number/{phone}", self.check_number),
            ("GET", "/contacts", self.contacts),
            ("POST", "/pair-phone", self.pair_phone),
            ("POST", "/sim/scan", self.sim_scan),
            ("POST", "/sim/inbound", self.sim_inbound),
            ("POST", "/sim/disconnect", self.sim_disconnect),
        ]
        for method, path, handler in routes:
            router.add(method, path, guard(self.runner, handler))

    async def _sent(self, sent: Any) -> Response:
        await self.runner.events.message_sent()
        return Response.json(sent.to_json())

    async def send_message(self, request: Request) -> Response:
        data = body(request)
        to = Recipient.parse(data.get("phone"), data.get("isGroup", False))
        text = text_field(data, "message", required=True, limit=MAX_TEXT)
        return await self._sent(await self.runner.connector.send_text(to, text))

    async def send_image(self, request: Request) -> Response:
        data = body(request)
        to = Recipient.parse(data.get("phone"), data.get("isGroup", False))
        media = Media(
            "image",
            url_field(data, "imageUrl", allow_private=self._allow_private),
            caption=text_field(data, "caption", limit=MAX_TEXT),
        )
        return await self._sent(await self.runner.connector.send_media(to, media))

    async def send_file(self, request: Request) -> Response:
        data = body(request)
        to = Recipient.parse(data.get("phone"), data.get("isGroup", False))
        url = url_field(data, "fileUrl", allow_private=self._allow_private)
        name = text_field(data, "fileName", limit=255)
        if "/" in name or "\\" in name or name in (".", ".."):
            raise HTTPError(400, "fileName must be a plain file name")
        default = urlsplit(url).path.rsplit("/", 1)[-1] or "file"
        media = Media(
            "file",
            url,
            caption=text_field(data, "caption", limit=MAX_TEXT),
            file_name=name or default,
        )
        return await self._sent(await self.runner.connector.send_media(to, media))

    async def check_number(self, request: Request) -> Response:
        return Response.json(await self.runner.connector.check_number(request.params["phone"]))

    async def contacts(self, _: Request) -> Response:
        found = await self.runner.connector.contacts()
        return Response.json({"success": True, "count": len(found), "contacts": found})

    async def pair_phone(self, request: Request) -> Response:
        phone = Recipient.parse(body(request).get("phone")).user
        connector = self.runner.connector
        code = await connector.pair_phone(phone)
        expires = datetime.now(UTC) + timedelta(seconds=connector.pair_code_seconds)
        return Response.json(
            {
                "success": True,
                "sessionId": self.runner.name,
                "phone": phone,
                "code": code,
                "expiresAt": expires.isoformat(timespec="seconds").replace("+00:00", "Z"),
                "message": "on the phone: WhatsApp > Linked devices > Link a device > "
                "Link with phone number instead, then type the code",
            }
        )

    # -- the sim connector's test hooks ----------------------------------------------

    def _sim(self) -> Any:
        from runner.connectors.sim import SimConnector

        connector = self.runner.connector
        if not isinstance(connector, SimConnector):
            raise HTTPError(409, f"session {self.runner.name} does not use the sim connector")
        return connector

    async def sim_scan(self, _: Request) -> Response:
        try:
            await self._sim().scan()
        except StateDirError as exc:
            raise HTTPError(507, f"not paired: {exc}") from None
        return Response.json({"success": True, "sessionId": self.runner.name})

    async def sim_inbound(self, request: Request) -> Response:
        data = body(request)
        sender = data.get("from")
        message = await self._sim().inbound(
            sender if isinstance(sender, str) else "",
            text_field(data, "body", required=True, limit=MAX_TEXT),
            text_field(data, "name", limit=200),
        )
        return Response.json({"success": True, "message": message.to_json()})

    async def sim_disconnect(self, request: Request) -> Response:
        data = body(request)
        seconds = data.get("seconds", 1.0)
        if not isinstance(seconds, int | float) or isinstance(seconds, bool):
            raise HTTPError(400, "seconds must be a number")
        if not 0 <= seconds <= 3600:
            raise HTTPError(400, "seconds must be between 0 and 3600")
        kind = data.get("kind", "network")
        await self._sim().drop(kind if isinstance(kind, str) else "", float(seconds))
        return Response.json({"success": True, "status": str(self.runner.live.status)})
