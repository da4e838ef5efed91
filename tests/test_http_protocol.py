"""The runner's HTTP server (runner/http.py) on a real loopback socket: what HTTP/1.1
refuses is a 400 before any handler runs, and the server's own policies (token before
the body, body limit, slow clients) hold. The server runs in this process on its own
event loop; clients are raw sockets, so every malformed byte reaches it as written."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator

import pytest

from runner.http import HTTPError, Request, Response, Router, Server
from tests.conftest import free_port_block
from tests.rawhttp import exchange

MAX_BODY = 4096


class Served:
    def __init__(self, port: int) -> None:
        self.port = port
        self.handled: list[tuple[str, bytes]] = []

    def send(self, raw: bytes, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        return exchange(self.port, raw, body)


@pytest.fixture
def served() -> Iterator[Served]:
    loop = asyncio.new_event_loop()
    port = free_port_block(1)
    out = Served(port)

    async def echo(request: Request) -> Response:
        out.handled.append((request.path, request.body))
        return Response.json({"path": request.path, "size": len(request.body)})

    async def before(request: Request) -> None:
        if request.headers.get("authorization") != "Bearer t":
            raise HTTPError(401, "a Bearer token is required", WWW_Authenticate="Bearer")

    router = Router()
    router.add("GET", "/health", echo)
    router.add("POST", "/echo", echo)
    server = Server(router, max_body=MAX_BODY, before=before)
    loop.run_until_complete(server.start("127.0.0.1", port))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield out
    asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


AUTH = b"Authorization: Bearer t\r\n"
POST = b"POST /echo HTTP/1.1\r\nHost: x\r\n" + AUTH
END = b"\r\n\r\n"


def test_a_well_formed_request_is_served(served: Served) -> None:
    status, headers, body = served.send(
        b"POST /echo HTTP/1.1\r\nHost: x\r\n" + AUTH + b"Content-Length: 5\r\n\r\nhello"
    )
    assert status == 200 and json.loads(body) == {"path": "/echo", "size": 5}
    assert headers["connection"] == "close" and headers["content-length"] == str(len(body))
    assert served.handled == [("/echo", b"hello")]


@pytest.mark.parametrize(
    ("what", "raw"),
    [
        (
            "conflicting Content-Length",
            b"POST /echo HTTP/1.1\r\nHost: x\r\n"
            + AUTH
            + b"Content-Length: 5\r\nContent-Length: 50\r\n\r\nhello",
        ),
        (
            "conflicting Content-Length in one header",
            b"POST /echo HTTP/1.1\r\nHost: x\r\n" + AUTH + b"Content-Length: 5, 6\r\n\r\nhello",
        ),
        ("a request line ending in FOO/9", b"GET /health FOO/9\r\nHost: x\r\n\r\n"),
        ("a request line without a version", b"GET /health\r\nHost: x\r\n\r\n"),
        ("a space before a header's colon", b"GET /health HTTP/1.1\r\nHost : x\r\n\r\n"),
        (
            "a 5,000-digit Content-Length",
            POST + b"Content-Length: " + b"9" * 5000 + END,
        ),
        (
            "a Content-Length over 20 digits",
            POST + b"Content-Length: 1" + b"0" * 21 + END,
        ),
        (
            "a Content-Length of non-ASCII digits",
            POST + "Content-Length: \u00b2".encode() + END,
        ),
        ("an HTTP/1.1 request without Host", b"GET /health HTTP/1.1\r\n\r\n"),
        ("two Host headers", b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        ("garbage", b"garbage\r\n\r\n"),
    ],
)
def test_what_http_refuses_is_a_400(served: Served, what: str, raw: bytes) -> None:
    status, _, body = served.send(raw)
    assert status == 400, what
    answer = json.loads(body)
    assert answer["success"] is False and answer["error"].startswith("malformed request")
    assert served.handled == [], "no handler saw it"


def test_oversized_headers_are_a_431(served: Served) -> None:
    status, _, body = served.send(
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"
    )
    assert status == 431 and b"too large" in body


def test_chunked_bodies_need_a_length_and_other_codings_are_not_implemented(
    served: Served,
) -> None:
    chunked = b"POST /echo HTTP/1.1\r\nHost: x\r\n" + AUTH + b"Transfer-Encoding: chunked\r\n\r\n"
    assert served.send(chunked, b"5\r\nhello\r\n0\r\n\r\n")[0] == 411
    gzip = b"POST /echo HTTP/1.1\r\nHost: x\r\n" + AUTH + b"Transfer-Encoding: gzip\r\n\r\n"
    assert served.send(gzip)[0] == 501
    assert served.handled == []


def test_the_token_is_checked_before_the_body_and_the_limit_before_reading_it(
    served: Served,
) -> None:
    big = b"x" * (MAX_BODY + 1)
    head = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n" % len(big)
    status, headers, _ = served.send(head + b"\r\n", big)
    assert status == 401 and headers["www-authenticate"] == "Bearer"
    status, _, body = served.send(head + AUTH + b"\r\n", big)
    assert status == 413 and b"limit" in body
    assert served.handled == []


def test_unknown_routes_and_methods(served: Served) -> None:
    assert served.send(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 404
    status, headers, _ = served.send(b"DELETE /echo HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 405 and headers["allow"] == "POST"


def test_http_1_0_and_a_client_that_leaves_without_a_request(served: Served) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=5):
        pass  # a port check: connect, then go
    status, _, body = served.send(b"GET /health HTTP/1.0\r\n" + AUTH + b"\r\n")
    assert status == 200 and json.loads(body)["path"] == "/health"
