"""The health monitor's own way in: `GET /health` on a unix socket in the state dir.

The TCP port is open to anyone who can reach it and serves at most MAX_CONNECTIONS at
once, so a client holding hundreds of idle connections gets every other caller a 503,
the monitor's check included. Read as "hung", that had the monitor kill the runner
again and again and park the session. This socket sits in a 0700 folder only
zapvisor's user can enter and serves nothing but /health: it says whether the runner
itself is alive, whatever is done to its port. It speaks just enough HTTP for the
monitor's probe (health/probe.py), and shares nothing with the API's server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("runner.lane")

MAX_REQUEST = 4096
READ_TIMEOUT = 2.0


class HealthLane:
    def __init__(self, path: Path, health: Callable[[], dict[str, Any]]) -> None:
        self.path = path
        self.health = health
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen; a failure only costs the monitor its second opinion, so it is logged
        and the runner goes on."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.path.unlink(missing_ok=True)  # a killed runner's socket file
            self._server = await asyncio.start_unix_server(
                self._answer, str(self.path), limit=MAX_REQUEST
            )
            self.path.chmod(0o600)
        except OSError as exc:
            log.warning(
                "no health socket at %s: %s", self.path, exc, extra={"event": "lane_failed"}
            )

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)
        await self._server.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            with contextlib.suppress(
                TimeoutError, asyncio.LimitOverrunError, asyncio.IncompleteReadError
            ):
                await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
            body = json.dumps(self.health()).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            with contextlib.suppress(ConnectionError):
                await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
