"""The runner's HTTP API on ZAPVISOR_BIND:PORT (seed 002 §4.2, one session per port).

`/health` and `/openapi.json` are open (for supervisors, load balancers and API tools);
every other route needs the session's Bearer token, compared by hash against the store,
and counts against the session's rate limit. The seed's paths work too:
`/api/sessions/<name>/status` is `/status` (the name must be this runner's).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import math
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ecosystem.apitoken import hash_token
from ecosystem.errors import InvalidValue, ZapvisorError
from ecosystem.models import check_webhook_url
from ecosystem.states import Status
from ecosystem.webhooks import EVENTS, check_events
from runner import api_messages, media
from runner.events import iso
from runner.http import Handler, HTTPError, Request, Response, Router, Server
from runner.openapi import document

if TYPE_CHECKING:
    from runner.core import Runner

OPEN_PATHS = frozenset({"/health", "/openapi.json"})
_TOKEN_REFRESH_SECONDS = 5.0
_SEED_PREFIX = "/api/sessions/"


class RateLimit:
    """A token bucket: ``per_minute`` requests in a burst, refilled evenly."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.tokens = self.capacity
        self.clock = clock
        self.stamp = clock()

    def take(self) -> float:
        """0 when the request may go ahead, else the seconds until it could."""
        if self.capacity <= 0:
            return 0.0
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class Api:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self._token_hash = runner.session.api_token_hash
        self._refreshed = 0.0
        self.limit = RateLimit(runner.settings.api_rate_limit)

    def rewrite(self, path: str) -> str:
        """The seed's `/api/sessions/<name>/<route>` → `/<route>`."""
        if not path.startswith(_SEED_PREFIX):
            return path
        name, _, rest = path[len(_SEED_PREFIX) :].partition("/")
        if name != self.runner.name:
            raise HTTPError(404, f"this port serves session {self.runner.name}, not {name!r}")
        return "/" + rest

    async def before(self, request: Request) -> None:
        if request.path in OPEN_PATHS:
            return
        # The token first: requests without the right one must not use up the session's
        # quota, or anyone who can reach the port could lock its client out with 429s.
        await self._authenticate(request)
        wait = self.limit.take()
        if wait:
            raise HTTPError(
                429,
                f"over {self.runner.settings.api_rate_limit} requests per minute; "
                f"retry in {math.ceil(wait)} s",
                Retry_After=str(math.ceil(wait)),
            )

    async def _authenticate(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise HTTPError(401, "a Bearer token is required", WWW_Authenticate="Bearer")
        if self._matches(token):
            return
        # The token may have been rotated since start: re-read the hash, not too often.
        if time.monotonic() - self._refreshed > _TOKEN_REFRESH_SECONDS:
            self._refreshed = time.monotonic()
            try:
                session = await self.runner.reporter.call(
                    self.runner.store.get_session, self.runner.name
                )
                self._token_hash = session.api_token_hash
            except ZapvisorError:
                pass
            if self._matches(token):
                return
        raise HTTPError(401, "invalid token", WWW_Authenticate="Bearer")

    def _matches(self, token: str) -> bool:
        return bool(self._token_hash) and hmac.compare_digest(
            hash_token(token), str(self._token_hash)
        )

    # -- session ---------------------------------------------------------------------

    async def health(self, _: Request) -> Response:
        return Response.json(self.runner.health())

    async def openapi(self, _: Request) -> Response:
        return Response.json(document(self.runner.name, self.runner.settings))

    async def status(self, _: Request) -> Response:
        live = self.runner.live
        return Response.json(
            {
                "sessionId": self.runner.name,
                "status": str(live.status),
                "phone": live.phone,
                "connector": self.runner.connector.kind,
                "connectedAt": iso(live.connected_at),
                "lastActivity": iso(live.last_activity_at),
                "messagesSent": live.messages_sent,
                "messagesReceived": live.messages_received,
                "lastError": live.last_error,
                "qrExpiresAt": iso(live.qr_expires_at),
            }
        )

    async def qrcode(self, _: Request) -> Response:
        live = self.runner.live
        if live.status == Status.CONNECTED:
            return Response.json(
                {
                    "sessionId": self.runner.name,
                    "status": str(live.status),
                    "message": "WhatsApp is already connected",
                    "phone": live.phone,
                }
            )
        if not live.qr_payload:
            return Response.json(
                {"sessionId": self.runner.name, "status": str(live.status), "qrCode": None}
            )
        from ecosystem import qr  # qrcode costs memory in every idle runner: load on use

        return Response.json(
            {
                "sessionId": self.runner.name,
                "status": str(live.status),
                "qr": live.qr_payload,
                "qrCode": qr.png_data_url(live.qr_payload),
                "expiresAt": iso(live.qr_expires_at),
            }
        )

    async def start(self, _: Request) -> Response:
        await self.runner.connector.start()
        return await self.status(_)

    async def logout(self, _: Request) -> Response:
        await self.runner.connector.logout()
        return Response.json(
            {"success": True, "message": "logged out; a new QR is needed to connect again"}
        )

    # -- webhook config ------------------------------------------------------------

    async def _webhook_view(self) -> dict[str, Any]:
        store, name = self.runner.store, self.runner.name
        session = await self.runner.reporter.call(store.get_session, name)
        counts = await self.runner.reporter.call(store.webhook_counts, name)
        return {
            "success": True,
            "webhookUrl": session.webhook_url,
            "events": session.webhook_events or list(EVENTS),
            "deliveries": counts,
        }

    async def get_webhook(self, _: Request) -> Response:
        return Response.json(await self._webhook_view())

    async def put_webhook(self, request: Request) -> Response:
        body = api_messages.body(request)
        changes: dict[str, Any] = {}
        if "url" in body:
            url = body["url"]
            if url is not None and not isinstance(url, str):
                raise HTTPError(400, "url must be a string or null")
            try:
                changes["webhook_url"] = check_webhook_url(url)
            except ValueError as exc:
                raise HTTPError(400, str(exc)) from None
            if url and not self.runner.settings.media_allow_private:
                await self._public_only(url)
        if "events" in body:
            events = body["events"]
            if events is not None and (
                not isinstance(events, list) or not all(isinstance(e, str) for e in events)
            ):
                raise HTTPError(400, "events must be a list of event names or null")
            try:
                changes["webhook_events"] = check_events(events)
            except ValueError as exc:
                raise HTTPError(400, str(exc)) from None
        if not changes:
            raise HTTPError(400, "nothing to change: send url and/or events")
        await self.runner.reporter.call(
            lambda: self.runner.store.update_session(
                self.runner.name, changes, actor="api", action="webhook"
            )
        )
        return Response.json(await self._webhook_view())

    async def _public_only(self, url: str) -> None:
        """The media URLs' address policy, for a webhook URL set through the API: the
        runner POSTs every event there, so whoever holds the session's token must not
        aim it at this host's loopback, its network or a cloud's metadata service
        (169.254.169.254). Checked on every address the host resolves to now; an
        operator's own `zapvisor config --webhook-url` is not checked."""
        refusal = (
            f"webhook URL {url} points at a loopback, private or link-local address; "
            f"set {media.SETTING}=true to allow such hosts"
        )
        try:
            media.check_url(url, False)
        except InvalidValue:
            raise HTTPError(400, refusal) from None
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            found = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise HTTPError(400, f"webhook URL {url}: {host} does not resolve ({exc})") from None
        addresses = {ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in found}
        if not all(media.is_public(ip) for ip in addresses):
            raise HTTPError(400, refusal)

    async def flush_webhooks(self, _: Request) -> Response:
        self.runner.outbox.wake()
        return Response.json({"success": True})


def build_server(runner: Runner) -> Server:
    api = Api(runner)
    router = Router()
    routes: list[tuple[str, str, Handler]] = [
        ("GET", "/health", api.health),
        ("GET", "/openapi.json", api.openapi),
        ("GET", "/status", api.status),
        ("GET", "/qrcode", api.qrcode),
        ("POST", "/start", api.start),
        ("POST", "/logout", api.logout),
        ("GET", "/webhook", api.get_webhook),
        ("PUT", "/webhook", api.put_webhook),
        ("POST", "/webhook/flush", api.flush_webhooks),
    ]
    for method, path, handler in routes:
        router.add(method, path, api_messages.guard(runner, handler))
    api_messages.MessageRoutes(runner).register(router)
    return Server(
        router, max_body=runner.settings.api_max_body, before=api.before, rewrite=api.rewrite
    )
