"""A small HTTP/1.1 server: h11's state machine on asyncio streams.

A runner's API is a handful of JSON routes, and a runner is one of hundreds on a host:
this keeps each idle worker at plain-asyncio cost instead of a web framework's. h11
parses and refuses what the RFC refuses (conflicting or oversized Content-Length, bad
request lines and header names, a missing Host), which a hand parser let through: the
request-smuggling kind of bug once a reverse proxy sits in front. The policies are ours:
one request per connection (``Connection: close``), at most MAX_CONNECTIONS at once,
the token checked on the head before a body is read, bodies bounded, slow clients cut
off.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import h11

log = logging.getLogger("runner.http")

MAX_HEADER_BYTES = 16 * 1024
READ_CHUNK = 64 * 1024
READ_TIMEOUT = 10.0
MAX_DISCARD = 64 * 1024 * 1024
MAX_CONNECTIONS = 128
"""Connections served at once; more are answered 503 at once and closed. Without a cap a
client holding thousands of idle connections (each allowed READ_TIMEOUT) would use up
the runner's file descriptors, and with them its store and WhatsApp connections."""


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    peer: str = ""

    def json(self) -> Any:
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise HTTPError(400, "the body is not valid JSON") from None


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200, **headers: str) -> Response:
        return cls(status, json.dumps(data, ensure_ascii=False).encode(), headers=headers)


class HTTPError(Exception):
    def __init__(
        self, status: int, message: str, *, data: dict[str, Any] | None = None, **headers: str
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.data = data or {}
        self.headers = headers


Handler = Callable[[Request], Awaitable[Response]]


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        self._routes.append((method, re.compile(f"^{regex}$"), handler))

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        allowed = []
        for verb, regex, handler in self._routes:
            match = regex.match(path)
            if match:
                if verb == method:
                    return handler, {k: unquote(v) for k, v in match.groupdict().items()}
                allowed.append(verb)
        if allowed:
            raise HTTPError(405, f"{method} is not allowed here", Allow=", ".join(allowed))
        raise HTTPError(404, f"no route {path}")


class Server:
    """Serves a Router; ``before`` runs ahead of every handler (auth, rate limits) and
    ``rewrite`` maps a request path onto the router's (aliases)."""

    def __init__(
        self,
        router: Router,
        *,
        max_body: int,
        before: Callable[[Request], Awaitable[None]] | None = None,
        rewrite: Callable[[str], str] | None = None,
    ) -> None:
        self.router = router
        self.max_body = max_body
        self.before = before
        self.rewrite = rewrite
        self._server: asyncio.Server | None = None
        self._open = 0
        self._full_at = 0
        """The connections held when a client was last turned away, until ``full()``."""
        self._handlers: set[asyncio.Task[Any]] = set()

    def full(self) -> int:
        """The connections held if the port is full now or turned a client away since
        the last call, else 0: the heartbeat's ``full`` (the monitor needs not ask a full
        port to know)."""
        found = max(self._full_at, self._open if self._open >= MAX_CONNECTIONS else 0)
        self._full_at = 0
        return found

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(
            self._handle, host, port, reuse_address=True, limit=MAX_HEADER_BYTES
        )

    async def close(self, grace: float = 3.0) -> None:
        """Stop listening, then let requests in flight finish (``grace`` seconds at
        most, then they are cancelled). On Python 3.11 ``wait_closed`` does not wait for
        them: a request that outlived the stop would reach a closed store thread."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        handlers = {t for t in self._handlers if t is not asyncio.current_task()}
        if not handlers:
            return
        _, late = await asyncio.wait(handlers, timeout=grace)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        await self._handle_one(reader, writer)

    async def _handle_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._open >= MAX_CONNECTIONS:
            self._full_at = self._open
            # Take what the client already sent (briefly), so closing does not reset the
            # connection before it reads the answer.
            with contextlib.suppress(TimeoutError, ConnectionError):
                await asyncio.wait_for(reader.read(MAX_HEADER_BYTES), 0.2)
            writer.write(_BUSY)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
            return
        self._open += 1
        try:
            await self._serve(reader, writer)
        finally:
            self._open -= 1

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        unread = 0
        try:
            try:
                head = await asyncio.wait_for(_read_head(conn, reader), READ_TIMEOUT)
                if not isinstance(head, h11.Request):
                    return  # connected and left without a request (a port check)
                request, unread = _request(head)
                request.peer = str(peer[0]) if peer else ""
                if self.rewrite is not None:
                    request.path = self.rewrite(request.path)
                # Route and authorise on the head alone: a client without a token (or
                # over its rate) never gets to make us read a big body.
                handler, request.params = self.router.resolve(request.method, request.path)
                if self.before is not None:
                    await self.before(request)
                if unread > self.max_body:
                    raise HTTPError(
                        413, f"body of {unread} bytes is over the {self.max_body}-byte limit"
                    )
                if unread:
                    request.body = await asyncio.wait_for(_read_body(conn, reader), READ_TIMEOUT)
                    unread = 0
                response = await handler(request)
            except h11.RemoteProtocolError as exc:
                status = exc.error_status_hint
                text = "request headers too large" if status == 431 else f"malformed request: {exc}"
                response = Response.json({"success": False, "error": text}, status)
            except HTTPError as exc:
                response = Response.json(
                    {"success": False, "error": exc.message, **exc.data},
                    exc.status,
                    **exc.headers,
                )
            except (TimeoutError, ConnectionError):
                return
            except Exception:
                log.exception("request failed", extra={"event": "http_error"})
                response = Response.json({"success": False, "error": "internal error"}, 500)
            await _write(writer, response)
            if unread:
                await self._discard(reader, unread)
            elif response.status >= 400:
                await _linger(reader, writer)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    @staticmethod
    async def _discard(reader: asyncio.StreamReader, length: int) -> None:
        """Read and drop a body we refused, so the client (still sending) reads our
        answer instead of a connection reset. Bounded in bytes and time."""
        left = min(length, MAX_DISCARD)
        with contextlib.suppress(TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            async with asyncio.timeout(READ_TIMEOUT):
                while left > 0:
                    # A client that announced a body but sends none is not waited for.
                    chunk = await asyncio.wait_for(reader.read(min(left, 1 << 16)), 0.5)
                    if not chunk:
                        return
                    left -= len(chunk)


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """After refusing a request whose body we never measured (chunked, a bad head), say
    we are done and drop what the client still sends, briefly: closing with its bytes
    unread would reset the connection before it reads the answer."""
    with contextlib.suppress(TimeoutError, ConnectionError, OSError):
        if writer.can_write_eof():
            writer.write_eof()
        async with asyncio.timeout(0.5):
            left = MAX_HEADER_BYTES * 4
            while left > 0 and (chunk := await reader.read(min(left, READ_CHUNK))):
                left -= len(chunk)


async def _next_event(conn: h11.Connection, reader: asyncio.StreamReader) -> Any:
    """The next h11 event, reading from the client as h11 asks for more."""
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        conn.receive_data(await reader.read(READ_CHUNK))  # b"" tells h11 of the EOF


async def _read_head(conn: h11.Connection, reader: asyncio.StreamReader) -> Any:
    """The request's head (or how the connection ended), read no further than
    MAX_HEADER_BYTES: h11 bounds only a head still incomplete, and one read could
    bring it a complete head of any size."""
    fed = 0
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        if fed >= MAX_HEADER_BYTES:
            raise HTTPError(431, "request headers too large")
        data = await reader.read(MAX_HEADER_BYTES - fed)
        fed += len(data)
        conn.receive_data(data)


def _request(head: h11.Request) -> tuple[Request, int]:
    """Our Request (without its body) from h11's, and the body's announced length."""
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in head.headers}
    if "transfer-encoding" in headers:
        # The body limit is checked on the announced length, before reading a byte.
        raise HTTPError(411, "send a Content-Length (chunked bodies are not accepted)")
    split = urlsplit(head.target.decode("latin-1"))
    request = Request(
        head.method.decode("latin-1").upper(),
        split.path or "/",
        parse_qs(split.query),
        headers,
        b"",
    )
    return request, int(headers.get("content-length", "0"))


async def _read_body(conn: h11.Connection, reader: asyncio.StreamReader) -> bytes:
    chunks = []
    while True:
        event = await _next_event(conn, reader)
        if isinstance(event, h11.Data):
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            return b"".join(chunks)
        else:  # the client went away before sending the whole body
            raise ConnectionError("the client closed the connection mid-body")


def _response_head(response: Response) -> list[tuple[str, str]]:
    head = [
        ("Content-Type", response.content_type),
        ("Content-Length", str(len(response.body))),
        ("Connection", "close"),
        ("Cache-Control", "no-store"),
    ]
    head.extend((k.replace("_", "-"), v) for k, v in response.headers.items())
    return head


def _serialise(response: Response) -> bytes:
    """The answer's bytes. The head is h11's, from a connection of its own: the
    request's may be in h11's ERROR state (a malformed request still gets its 400)."""
    head = h11.Connection(h11.SERVER).send(
        h11.Response(
            status_code=response.status,
            headers=_response_head(response),
            reason=HTTPStatus(response.status).phrase,
        )
    )
    return (head or b"") + response.body


async def _write(writer: asyncio.StreamWriter, response: Response) -> None:
    """One answer, then the connection closes."""
    writer.write(_serialise(response))
    with contextlib.suppress(ConnectionError):
        await writer.drain()


_BUSY = _serialise(
    Response.json(
        {"success": False, "error": "too many connections at once; retry"}, 503, Retry_After="1"
    )
)
"""What a client past MAX_CONNECTIONS gets at once (made once: no parsing, no state)."""
