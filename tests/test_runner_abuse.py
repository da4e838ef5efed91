"""What a local client, with or without the session's token, can do to a runner over
its port: starve the health check by holding connections, send absurd headers and
bodies, point the webhook at internal addresses. Real runners under a real supervisord
with the health monitor on; every request goes over a real socket."""

from __future__ import annotations

import ipaddress
import selectors
import socket
import threading
from collections.abc import Callable
from typing import Any

import pytest

from runner.http import MAX_CONNECTIONS
from tests.conftest import Env, wait_for
from tests.health_helpers import FAST, Look
from tests.test_session_api import call, raw_request

pytestmark = pytest.mark.e2e


class Flood:
    """Holds ``n`` idle connections to a port, opening a new one whenever the server
    closes one (what a client starving the runner does)."""

    def __init__(self, port: int, n: int) -> None:
        self.port, self.n = port, n
        self.stop = threading.Event()
        self.opened = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Flood:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop.set()
        self.thread.join(10)

    def _open(self, sel: selectors.BaseSelector) -> None:
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
        except OSError:
            return
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        self.opened += 1

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        try:
            while not self.stop.is_set():
                while len(sel.get_map()) < self.n and not self.stop.is_set():
                    self._open(sel)
                for key, _ in sel.select(0.1):
                    sock: socket.socket = key.fileobj  # type: ignore[assignment]
                    try:
                        data = sock.recv(4096)
                    except OSError:
                        data = b""
                    if not data:
                        sel.unregister(sock)
                        sock.close()
        finally:
            for key in list(sel.get_map().values()):
                key.fileobj.close()  # type: ignore[union-attr]
            sel.close()


def test_idle_connections_do_not_make_the_runner_look_hung(make_env: Callable[..., Env]) -> None:
    """500 idle connections held on the runner's port for many checks: its port answers
    503 past the connection cap, yet the monitor neither restarts nor parks it (its
    heartbeat goes on, and says the port is full: the monitor warns without asking the
    port), and the API serves again once they go."""
    env = make_env(max_sessions=2, **FAST, ZAPVISOR_CRASH_MAX_EXITS="2")
    env.cli("create", "busy", "--connector", "sim")
    look = Look(env)
    pid = wait_for(lambda: look.up("busy"))
    port = look.session("busy").port
    wait_for(lambda: look.checks() >= 2)
    sock = env.home / "run" / "busy.sock"
    assert sock.is_socket() and (sock.parent.stat().st_mode & 0o777) == 0o700

    with Flood(port, 500) as flood:
        saw_503 = wait_for(lambda: raw_request(port, "GET /status HTTP/1.1")[0] == 503)
        checks = look.checks()
        wait_for(lambda: look.checks() >= checks + 12, timeout=60)  # the monitor kept checking
        assert flood.opened >= 500
    assert saw_503
    assert look.events("busy", "hung") == [], "a starved port was read as a hung runner"
    h = look.health("busy")
    assert h.restarts == 0 and h.parked_at is None
    assert look.proc("busy").pid == pid and look.session("busy").desired_state == "running"
    log = (env.home / "logs" / "zapvisor-health.log").read_text()
    full = f"(port full: {MAX_CONNECTIONS} connections held)"  # said by its heartbeat
    assert f"busy: its port turns the health check away {full}" in log
    wait_for(lambda: call(port, "/health", None)[0] == 200, timeout=30)
    health_log = env.home / "logs" / "zapvisor-health.log"
    wait_for(lambda: "busy: its port answers the health check again" in health_log.read_text())
    look.close()


def test_absurd_content_length_and_deep_json_bodies_are_client_errors(zv: Env) -> None:
    """A 5,000-digit Content-Length (no token needed) and a 100,000-deep JSON body (with
    the token) are 4xx answers, never a 500 or a traceback in the runner's log."""
    zv.cli("create", "bodies", "--connector", "sim")
    port = zv.json("show", "bodies")["port"]
    token = zv.cli("token", "bodies").stdout.strip()
    # 5,000 digits: refused as malformed before anything else (4xx, never a 500)
    huge = "9" * 5000
    anon = f"POST /send-message HTTP/1.1\r\nHost: x\r\nContent-Length: {huge}"
    authed = anon + f"\r\nAuthorization: Bearer {token}"
    for head in (anon, authed):
        status, data = raw_request(port, head)
        assert 400 <= status < 500, data[:200]
    # 20 digits parse (h11 refuses more), and are too big: the token first, then the limit
    long = "9" * 20
    anon = f"POST /send-message HTTP/1.1\r\nHost: x\r\nContent-Length: {long}"
    assert raw_request(port, anon)[0] == 401
    status, data = raw_request(port, anon + f"\r\nAuthorization: Bearer {token}")
    assert status == 413 and b"limit" in data

    for depth in (100_000, 65):
        deep = b"[" * depth + b"]" * depth
        head = (
            f"PUT /webhook HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(deep)}"
        )
        status, data = raw_request(port, head, deep)
        assert status == 400 and b"nested deeper than 64 levels" in data, data[-200:]
    status, data = raw_request(
        port,
        f"POST /send-message HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        "Content-Length: 32",
        b'{"phone": NaN, "message": "ola"}',
    )
    assert status == 400 and b"NaN" in data
    assert call(port, "/health", None)[0] == 200
    logs = "".join(p.read_text(errors="replace") for p in (zv.home / "logs").glob("wa-*.log"))
    assert "request failed" not in logs and "Traceback" not in logs


def test_a_webhook_url_set_through_the_api_must_be_public(
    make_env: Callable[..., Env],
) -> None:
    """PUT /webhook follows the media URLs' address policy (and its opt-in setting): a
    token holder cannot make the runner POST events to this host's loopback, its network
    or the cloud metadata address. The operator's own `config --webhook-url` may."""
    env = make_env(max_sessions=2)
    env.cli("create", "hooks", "--connector", "sim")
    port = env.json("show", "hooks")["port"]
    token = env.cli("token", "hooks").stdout.strip()
    internal = [
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:8080/x",
        "http://[::1]:9/",
        "http://10.0.0.5/hook",
        "http://[::ffff:169.254.169.254]/",
    ]
    me = socket.gethostname()
    if not any(media_public(str(a[4][0])) for a in socket.getaddrinfo(me, 80)):
        internal.append(f"http://{me}:9/hook")  # a name that resolves to loopback
    else:
        print(f"{me} resolves to a public address here; the by-name case is not checked")
    for url in internal:
        status, body = call(port, "/webhook", token, "PUT", {"url": url})
        assert status == 400, (url, body)
        assert "ZAPVISOR_MEDIA_ALLOW_PRIVATE" in body["error"], body
    status, body = call(port, "/webhook", token, "PUT", {"url": "http://zv-none.invalid/h"})
    assert status == 400 and "does not resolve" in body["error"]
    assert env.json("show", "hooks")["webhook_url"] is None
    assert env.json("config", "hooks", "--webhook-url", "http://127.0.0.1:9/hook")["webhook_url"]

    opted = make_env(max_sessions=2, ZAPVISOR_MEDIA_ALLOW_PRIVATE="true")
    opted.cli("create", "lan", "--connector", "sim")
    port = opted.json("show", "lan")["port"]
    token = opted.cli("token", "lan").stdout.strip()
    status, body = call(port, "/webhook", token, "PUT", {"url": "http://127.0.0.1:9/hook"})
    assert status == 200 and body["webhookUrl"] == "http://127.0.0.1:9/hook"


def media_public(address: str) -> bool:
    from runner.media import is_public

    return is_public(ipaddress.ip_address(address.split("%", 1)[0]))
