"""One webhook attempt is bounded as a whole, not only per socket read."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from runner.webhooks import post


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
    status, note = post(url, b"{}", {"Content-Type": "application/json"}, timeout=1.0)
    assert status is None
    assert note == "the receiver took longer than 1 s"
