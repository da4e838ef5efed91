"""The runner's HTTP API on ZAPVISOR_BIND:PORT.

`/health` is open (for supervisors and load balancers); every other route needs the
session's Bearer token, compared by hash against the store.
"""

from __future__ import annotations

import hmac
import os
import time
from typing import TYPE_CHECKING, Any

from ecosystem.apitoken import hash_token
from ecosystem.errors import ZapvisorError
from ecosystem.states import Status
from runner.http import HTTPError, Request, Response, Router, Server

if TYPE_CHECKING:
    from runner.core import Runner

MAX_BODY = 10 * 1024 * 1024
OPEN_PATHS = frozenset({"/health"})
_TOKEN_REFRESH_SECONDS = 5.0


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


class Api:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self._token_hash = runner.session.api_token_hash
        self._refreshed = 0.0

    async def authorize(self, request: Request) -> None:
        if request.path in OPEN_PATHS:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
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

    async def health(self, _: Request) -> Response:
        live = self.runner.live
        return Response.json(
            {
                "ok": True,
                "session": self.runner.name,
                "status": str(live.status),
                "pid": os.getpid(),
                "uptime_seconds": round(time.monotonic() - live.started, 1),
            }
        )

    async def status(self, _: Request) -> Response:
        live = self.runner.live
        return Response.json(
            {
                "sessionId": self.runner.name,
                "status": str(live.status),
                "phone": live.phone,
                "connector": self.runner.connector.kind,
                "connectedAt": _iso(live.connected_at),
                "lastActivity": _iso(live.last_activity_at),
                "messagesSent": live.messages_sent,
                "messagesReceived": live.messages_received,
                "lastError": live.last_error,
                "qrExpiresAt": _iso(live.qr_expires_at),
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
                "expiresAt": _iso(live.qr_expires_at),
            }
        )

    async def sim_scan(self, _: Request) -> Response:
        from runner.connectors.sim import SimConnector

        connector = self.runner.connector
        if not isinstance(connector, SimConnector):
            raise HTTPError(409, f"session {self.runner.name} does not use the sim connector")
        try:
            connector.scan()
        except ZapvisorError as exc:
            raise HTTPError(409, str(exc)) from None
        return Response.json({"success": True, "sessionId": self.runner.name})

    async def logout(self, _: Request) -> Response:
        await self.runner.connector.logout()
        return Response.json(
            {"success": True, "message": "logged out; a new QR is needed to connect again"}
        )


def build_server(runner: Runner) -> Server:
    api = Api(runner)
    router = Router()
    router.add("GET", "/health", api.health)
    router.add("GET", "/status", api.status)
    router.add("GET", "/qrcode", api.qrcode)
    router.add("POST", "/sim/scan", api.sim_scan)
    router.add("POST", "/logout", api.logout)
    return Server(router, max_body=MAX_BODY, before=api.authorize)
