"""The health monitor's own way in: `GET /health` on a unix socket in the state dir.

The TCP port is open to anyone who can reach it and serves at most MAX_CONNECTIONS at
once, so a client holding hundreds of idle connections gets every other caller a 503,
the monitor's check included. Read as "hung", that had the monitor kill the runner
again and again and park the session. This socket sits in a 0700 folder only
zapvisor's user can enter and serves nothing but /health: it says whether the runner
itself is alive, whatever is done to its port. It answers through h11, like the API,
but shares nothing else with the API's server (not its connection cap).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h11

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
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST)
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                event = conn.next_event()
                while event is h11.NEED_DATA:
                    conn.receive_data(await reader.read(MAX_REQUEST))
                    event = conn.next_event()
            if not isinstance(event, h11.Request):
                return  # it went away (or sent nothing): nobody to answer
            body = json.dumps(self.health()).encode()
            headers = [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Connection", "close"),
            ]
            writer.write(
                (conn.send(h11.Response(status_code=200, headers=headers)) or b"")
                + (conn.send(h11.Data(data=body)) or b"")
                + (conn.send(h11.EndOfMessage()) or b"")
            )
            with contextlib.suppress(ConnectionError):
                await writer.drain()
        except (TimeoutError, h11.RemoteProtocolError, ConnectionError):
            return
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
