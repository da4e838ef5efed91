"""One webhook attempt to a real receiver on loopback: bounded as a whole, not only per
socket read; Basic auth from the URL; redirects not followed; one pooled connection."""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from runner.outbox import Sender


@pytest.fixture
def dripping_receiver() -> Iterator[tuple[str, threading.Event]]:
    """A real receiver on loopback that answers one byte every 0.2 s, forever."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            while not stop.wait(0.2):
                try:
                    conn.sendall(b"x")
                except OSError:
                    return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/hook", stop
    stop.set()
    server.close()
    thread.join(5)


def test_a_receiver_that_drips_its_answer_fails_the_attempt_at_the_timeout(
    dripping_receiver: tuple[str, threading.Event],
) -> None:
    url, _ = dripping_receiver

    # Each byte comes well within the 1 s read timeout, so only the whole-attempt
    # deadline can end this: without it the answer would take 200 s (and the test
    # would hit pytest's own limit).
    async def attempt() -> tuple[int | None, str]:
        sender = Sender(timeout=1.0)
        try:
            return await sender.post(url, b"{}", {"Content-Type": "application/json"})
        finally:
            await sender.aclose()

    status, note = asyncio.run(attempt())
    assert status is None
    assert note == "the receiver took longer than 1 s"


class Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so the client's pooling shows
    seen: list[tuple[str, str | None, int]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        Recorder.seen.append((self.path, self.headers.get("Authorization"), self.client_address[1]))
        redirect = self.path == "/moved"
        self.send_response(302 if redirect else 204)
        if redirect:
            self.send_header("Location", "/elsewhere")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_userinfo_is_basic_auth_redirects_are_not_followed_and_connections_pooled() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"127.0.0.1:{server.server_address[1]}"
    Recorder.seen = []

    async def deliveries() -> list[tuple[int | None, str]]:
        sender = Sender(timeout=5.0)
        try:
            return [
                await sender.post(f"http://hook:p%40ss@{base}/a", b"{}", {}),
                await sender.post(f"http://{base}/moved", b"{}", {}),
                await sender.post(f"http://{base}/b", b"{}", {}),
            ]
        finally:
            await sender.aclose()

    try:
        results = asyncio.run(deliveries())
    finally:
        server.shutdown()
        server.server_close()
    assert results == [
        (204, "HTTP 204"),
        (302, "HTTP 302 (redirects are not followed)"),
        (204, "HTTP 204"),
    ]
    paths = [path for path, _, _ in Recorder.seen]
    assert paths == ["/a", "/moved", "/b"], "the redirect's target was never asked"
    assert Recorder.seen[0][1] == "Basic " + base64.b64encode(b"hook:p@ss").decode()
    assert Recorder.seen[2][1] is None
    assert len({port for _, _, port in Recorder.seen}) == 1, "one pooled connection"
