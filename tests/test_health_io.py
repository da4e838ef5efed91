"""The monitor's I/O pieces on real sockets: batched /health probes, and alert
delivery to a real HTTP receiver (with retries) from a real SQLite store."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ecosystem.health.model import AlertKind, NewAlert
from ecosystem.health.notify import Notifier
from ecosystem.health.probe import FAILED, OK, REFUSED, healthy_response, probe_many
from ecosystem.store.sqlite import SQLiteStore
from tests.alert_receiver import Receiver
from tests.conftest import ROOT


def test_healthy_response_parsing() -> None:
    ok = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"ok": true, "session": "a"}'
    assert healthy_response(ok, "a")
    assert not healthy_response(ok, "b"), "another session on that port"
    assert not healthy_response(ok.replace(b"200 OK", b"503 No"), "a")
    assert not healthy_response(b'HTTP/1.1 200 OK\r\n\r\n{"ok": false, "session": "a"}', "a")
    assert not healthy_response(b"HTTP/1.1 200 OK\r\n\r\nnot json", "a")
    assert not healthy_response(b"garbage", "a")


@pytest.fixture
def servers() -> Iterator[dict[str, int]]:
    """A healthy server per session name, a closed port, and a listener that accepts
    nothing (a hung runner: the kernel completes the handshake, nobody answers)."""
    loop = asyncio.new_event_loop()
    ports: dict[str, int] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        port = writer.get_extra_info("sockname")[1]
        name = next(n for n, p in ports.items() if p == port)
        body = f'{{"ok": true, "session": "{name}"}}'.encode()
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    async def start() -> list[asyncio.Server]:
        out = []
        for i in range(40):
            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            ports[f"ok{i}"] = server.sockets[0].getsockname()[1]
            out.append(server)
        return out

    made = loop.run_until_complete(start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    ports["closed"] = closed.getsockname()[1]
    closed.close()
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(8)
    ports["hung"] = hung.getsockname()[1]
    yield ports
    hung.close()
    for server in made:
        loop.call_soon_threadsafe(server.close)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def test_probe_many_healthy_refused_and_hung(servers: dict[str, int]) -> None:
    began = time.monotonic()
    results = probe_many("127.0.0.1", servers, timeout=1.0)
    took = time.monotonic() - began
    assert {n for n, r in results.items() if r == OK} == {f"ok{i}" for i in range(40)}
    assert results["closed"] == REFUSED and results["hung"] == FAILED
    assert took < 10, "one deadline for the whole batch, not one per probe"
    # batches smaller than the targets still answer every one of them
    small = probe_many("127.0.0.1", servers, timeout=1.0, max_open=7)
    assert small == results


def ram(message: str = "RAM high") -> NewAlert:
    return NewAlert(host="h1", key="ram", kind=AlertKind.RAM, message=message)


def test_notifier_delivers_each_phase_once_and_retries(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "z.db")
    store.migrate()
    now = [datetime.now(UTC)]
    with Receiver(fail_first=1) as receiver:
        notifier = Notifier(store, "h1", lambda: receiver.url, lambda: now[0])
        alert = store.raise_alert(ram())
        assert alert is not None
        assert notifier.deliver_pending() == 0, "the receiver failed the first attempt"
        assert receiver.attempts == 1
        assert notifier.deliver_pending() == 0, "not retried before its delay"
        now[0] += timedelta(seconds=6)
        assert notifier.deliver_pending() == 1
        assert notifier.deliver_pending() == 0, "delivered once"
        store.clear_alert("h1", "ram")
        assert notifier.deliver_pending() == 1
        assert notifier.deliver_pending() == 0
        assert receiver.events("ram") == ["alert.raised", "alert.cleared"]
        body = receiver.posts[0]["alert"]
        assert body["kind"] == "ram" and body["active"] is True and body["message"] == "RAM high"
        # with no URL nothing is sent and nothing is marked
        store.raise_alert(ram())
        silent = Notifier(store, "h1", lambda: None, lambda: now[0])
        assert silent.deliver_pending() == 0
        assert len(store.pending_alert_notices("h1", now[0] - timedelta(hours=1))) == 1
    store.close()


STRAYS = """
import logging, os, subprocess, warnings
from ecosystem.health.listener import claim_stdout, configure_logging
configure_logging()
protocol = claim_stdout()
print("stray print")
os.write(1, b"stray fd write\\n")
subprocess.run(["echo", "stray child"], check=True)
warnings.warn("stray warning", stacklevel=1)
logging.getLogger("lib").warning("stray log")
protocol.write("READY\\n")
protocol.flush()
"""


def test_only_the_listener_protocol_reaches_stdout() -> None:
    """Whatever a library, a C extension or a child process writes to stdout would break
    supervisord's listener protocol: after claim_stdout it all goes to stderr."""
    out = subprocess.run(
        [sys.executable, "-c", STRAYS], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == "READY\n"
    for stray in ("stray print", "stray fd write", "stray child", "stray warning", "stray log"):
        assert stray in out.stderr
