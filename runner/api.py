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
from ecosystem.session import check_webhook_url
from ecosystem.states import Status
from ecosystem.webhook_events import EVENTS, check_events
from runner import api_bot, api_messages, media
from runner.events import iso
from runner.http import Handler, HTTPError, Request, Response, Router, Server
from runner.openapi import Route, document, reply

if TYPE_CHECKING:
    from runner import api_models as m
    from runner.core import Runner
else:
    from runner.openapi import models as m

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
        self.routes: list[Route] = []
        self._document: dict[str, Any] | None = None

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
        lease = self.runner.lease
        if lease.required and lease.fence is None and not lease.unleased:
            # the session's row, auth and outbox are the lease holder's until this host
            # holds it: nothing here may act on them
            why = lease.waiting or "asking the store"
            raise HTTPError(
                503,
                f"session {self.runner.name} is waiting for its lease ({why}); it "
                "connects once this host holds it",
                Retry_After="5",
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

    async def health(self, _: Request, __: None) -> Response:
        # as answered, without the Health model: building it would load pydantic into
        # every runner at its first health check (tests/test_api check the shape)
        return Response.json(self.runner.health())

    async def openapi(self, _: Request, __: None) -> Response:
        if self._document is None:  # the same for the runner's whole life
            self._document = document(self.runner.name, self.runner.settings, self.routes)
        return Response.json(self._document)

    async def status(self, _: Request, __: None) -> Response:
        live = self.runner.live
        return reply(
            m.SessionStatus(
                sessionId=self.runner.name,
                status=live.status,
                phone=live.phone,
                connector=self.runner.connector.kind,
                connectedAt=iso(live.connected_at),
                lastActivity=iso(live.last_activity_at),
                messagesSent=live.messages_sent,
                messagesReceived=live.messages_received,
                lastError=live.last_error,
                qrExpiresAt=iso(live.qr_expires_at),
            )
        )

    async def qrcode(self, _: Request, __: None) -> Response:
        live = self.runner.live
        if live.status == Status.CONNECTED:
            return reply(
                m.QrCode(
                    sessionId=self.runner.name,
                    status=live.status,
                    message="WhatsApp is already connected",
                    phone=live.phone,
                )
            )
        if not live.qr_payload:
            return reply(m.QrCode(sessionId=self.runner.name, status=live.status, qrCode=None))
        from ecosystem import qr  # qrcode costs memory in every idle runner: load on use

        # made off the event loop (a PNG takes milliseconds), once per payload
        png = await asyncio.to_thread(qr.png_data_url, live.qr_payload)
        return reply(
            m.QrCode(
                sessionId=self.runner.name,
                status=live.status,
                qr=live.qr_payload,
                qrCode=png,
                expiresAt=iso(live.qr_expires_at),
            )
        )

    async def start(self, request: Request, _: None) -> Response:
        await self.runner.connector.start()
        return await self.status(request, None)

    async def logout(self, _: Request, __: None) -> Response:
        await self.runner.connector.logout()
        return reply(
            m.Done(success=True, message="logged out; a new QR is needed to connect again")
        )

    # -- webhook config ------------------------------------------------------------

    async def _webhook_view(self) -> Response:
        store, name = self.runner.store, self.runner.name
        session = await self.runner.reporter.call(store.get_session, name)
        counts = await self.runner.reporter.call(store.webhook_counts, name)
        return reply(
            m.WebhookConfig(
                success=True,
                webhookUrl=session.webhook_url,
                events=session.webhook_events or list(EVENTS),
                deliveries=counts,
            )
        )

    async def get_webhook(self, _: Request, __: None) -> Response:
        return await self._webhook_view()

    async def put_webhook(self, _: Request, body: m.PutWebhook) -> Response:
        changes: dict[str, Any] = {}
        try:
            if "url" in body.model_fields_set:
                changes["webhook_url"] = check_webhook_url(body.url)
            if "events" in body.model_fields_set:
                changes["webhook_events"] = check_events(body.events)
        except ValueError as exc:
            raise HTTPError(400, str(exc)) from None
        if changes.get("webhook_url") and not self.runner.settings.media_allow_private:
            await self._public_only(changes["webhook_url"])
        if not changes:
            raise HTTPError(400, "nothing to change: send url and/or events")
        await self.runner.reporter.call(
            lambda: self.runner.store.update_session(
                self.runner.name, changes, actor="api", action="webhook"
            )
        )
        return await self._webhook_view()

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

    async def flush_webhooks(self, _: Request, __: None) -> Response:
        self.runner.outbox.wake()
        return reply(m.Done(success=True))

    def session_routes(self) -> list[Route]:
        return [
            Route(
                "GET",
                "/health",
                "health",
                "liveness, without a token",
                self.health,
                "Health",
                open=True,
            ),
            Route(
                "GET",
                "/openapi.json",
                "openapi",
                "this document",
                self.openapi,
                "Answer",
                open=True,
                documented=False,
            ),
            Route(
                "GET",
                "/status",
                "status",
                "the session's status and counters",
                self.status,
                "SessionStatus",
            ),
            Route(
                "GET",
                "/qrcode",
                "qrcode",
                "the pairing QR as a PNG data URL while waiting for a scan",
                self.qrcode,
                "QrCode",
            ),
            Route(
                "POST",
                "/start",
                "start",
                "connect again when disconnected",
                self.start,
                "SessionStatus",
            ),
            Route(
                "POST",
                "/logout",
                "logout",
                "unlink the phone and delete the auth",
                self.logout,
                "Done",
            ),
            Route(
                "GET",
                "/webhook",
                "getWebhook",
                "webhook URL, events and delivery counts",
                self.get_webhook,
                "WebhookConfig",
            ),
            Route(
                "PUT",
                "/webhook",
                "putWebhook",
                "set the webhook URL (null removes it) and the events sent (null: all)",
                self.put_webhook,
                "WebhookConfig",
                "PutWebhook",
                (400,),
            ),
            Route(
                "POST",
                "/webhook/flush",
                "flushWebhooks",
                "deliver due webhook events now",
                self.flush_webhooks,
                "Done",
            ),
        ]


def _bind(route: Route, runner: Runner) -> Handler:
    """The route's handler behind the body check and the error mapping."""
    body_model = route.body

    async def handle(request: Request) -> Response:
        body = None if body_model is None else m.parse(request, getattr(m, body_model))
        return await route.handler(request, body)

    return api_messages.guard(runner, handle)


def build_server(runner: Runner) -> Server:
    api = Api(runner)
    api.routes = (
        api.session_routes()
        + api_messages.MessageRoutes(runner).routes()
        + api_bot.BotRoutes(runner).routes()
    )
    router = Router()
    for route in api.routes:
        router.add(route.method, route.path, _bind(route, runner))
    return Server(
        router, max_body=runner.settings.api_max_body, before=api.before, rewrite=api.rewrite
    )
