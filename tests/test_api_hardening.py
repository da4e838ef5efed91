"""What an API caller must not be able to do to a runner or its host: reach internal
addresses through send-image/send-file (SSRF), crash the webhook dispatcher with a
webhook URL, lock the session's client out with wrong-token requests, get a 500 from a
malformed header; and no secret in the runner's logs. Real runners under a real
supervisord, real loopback HTTP servers (127.0.0.1 and 127.0.0.2 stand for "internal"
hosts; the public internet is not reachable here)."""

from __future__ import annotations

import ipaddress
import socket
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ecosystem.errors import InvalidValue
from runner import media
from runner.connectors.base import UpstreamError
from tests.conftest import Env, wait_for
from tests.test_session_api import call, raw_request

HEALTH = "GET /health HTTP/1.1\r\nHost: x"


class MediaServer:
    """Serves `image/png` bytes (`/untyped`: with no Content-Type); `/redir?to=URL`
    answers 302 to URL. Records hits."""

    def __init__(self, host: str) -> None:
        self.hits: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits.append(self.path)
                if self.path.startswith("/redir?to="):
                    self.send_response(302)
                    self.send_header("Location", self.path.split("=", 1)[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = b"\x89PNG fake"
                self.send_response(200)
                if self.path != "/untyped":
                    self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def servers() -> Iterator[tuple[MediaServer, MediaServer]]:
    one, two = MediaServer("127.0.0.1"), MediaServer("127.0.0.2")
    yield one, two
    one.close()
    two.close()


def test_media_without_a_content_type_is_not_called_text(
    servers: tuple[MediaServer, MediaServer],
) -> None:
    inside, _ = servers
    # http.client would report text/plain; the sender decides from the file name instead
    assert media.fetch(f"{inside.url}/untyped", allow_private=True) == (b"\x89PNG fake", "")


def test_only_public_addresses_count_as_public() -> None:
    for text in (
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
    ):
        assert not media.is_public(ipaddress.ip_address(text)), text
    for text in ("8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"):
        assert media.is_public(ipaddress.ip_address(text)), text


def test_media_fetch_refuses_internal_hosts_and_redirects_to_them(
    servers: tuple[MediaServer, MediaServer],
) -> None:
    inside, other = servers
    # by default a loopback URL is refused before any connection
    for url in (f"{inside.url}/a.png", "http://localhost:1/a.png", "http://[::ffff:7f00:1]:1/"):
        with pytest.raises(InvalidValue, match="ZAPVISOR_MEDIA_ALLOW_PRIVATE"):
            media.fetch(url)
    assert inside.hits == []
    # with the setting on it is fetched
    assert media.fetch(f"{inside.url}/a.png", allow_private=True) == (b"\x89PNG fake", "image/png")

    # the check is made on the address connected to, for every redirect: a host that
    # is allowed (here 127.0.0.1 only) cannot bounce the runner to one that is not
    def allowed(ip: Any) -> bool:
        return str(ip) == "127.0.0.1"

    with pytest.raises(InvalidValue, match=r"127\.0\.0\.2"):
        media.fetch(f"{inside.url}/redir?to={other.url}/b.png", allowed=allowed)
    assert other.hits == []
    # nor to a non-http scheme (ftp, file): a plain download failure, no crash
    for target in (f"ftp://127.0.0.1:{inside.http.server_address[1]}/x", "file:///etc/passwd"):
        with pytest.raises(UpstreamError):
            media.fetch(f"{inside.url}/redir?to={target}", allowed=allowed)
    assert media.fetch(f"{inside.url}/redir?to={inside.url}/c.png", allowed=allowed)[0]


@dataclass
class Tight:
    zv: Env
    port: int
    token: str
    pid: int


@pytest.fixture
def tight(make_env: Any) -> Tight:
    """A sim session whose API allows 20 requests a minute; webhooks retried once."""
    zv: Env = make_env(ZAPVISOR_API_RATE_LIMIT="20", ZAPVISOR_WEBHOOK_RETRY_SCHEDULE="0,600")
    zv.cli("create", "tight", "--connector", "sim")
    port = zv.json("show", "tight")["port"]
    token = zv.cli("token", "tight").stdout.strip()
    return Tight(zv, port, token, call(port, "/health", None)[1]["pid"])


def _logs(zv: Env) -> str:
    return "".join(p.read_text(errors="replace") for p in (zv.home / "logs").glob("*.log"))


@pytest.mark.e2e
def test_a_runner_fetches_no_internal_media_and_wrong_tokens_cost_no_quota(
    tight: Tight, servers: tuple[MediaServer, MediaServer]
) -> None:
    inside, _ = servers
    port, token = tight.port, tight.token
    # SSRF: media on loopback or a metadata address is refused with a 400 naming the
    # setting; the internal server never sees a request
    for route, key in (("/send-image", "imageUrl"), ("/send-file", "fileUrl")):
        for url in (f"{inside.url}/x.png", "http://169.254.169.254/latest/meta-data/"):
            status, body = call(port, route, token, "POST", {"phone": "5511999999999", key: url})
            assert status == 400 and "ZAPVISOR_MEDIA_ALLOW_PRIVATE" in body["error"], body
    assert (
        call(
            port,
            "/send-file",
            token,
            "POST",
            {"phone": "5511999999999", "fileUrl": "http://x:99999/"},
        )[0]
        == 400
    )
    assert inside.hits == []

    # wrong tokens do not use up the session's quota (20/min here)
    assert all(call(port, "/status", "zv_wrong")[0] == 401 for _ in range(30))
    assert call(port, "/status", token)[0] == 200

    # a Content-Length of non-ASCII digits is a 400, not a 500
    head = f"POST /send-message HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}"
    assert raw_request(port, head + "\r\nContent-Length: \u00b2")[0] == 400
    logs = _logs(tight.zv)
    assert "request failed" not in logs
    assert token not in logs and "zv_wrong" not in logs


@pytest.mark.e2e
def test_unusable_webhook_urls_are_refused_or_fail_their_deliveries(tight: Tight) -> None:
    zv, port, token, pid = tight.zv, tight.port, tight.token, tight.pid
    # webhook URLs the delivery could not use are refused where they are set ...
    for bad in ("http://h:99999/hook", "http://:80/hook", "http://h/caf\u00e9"):
        out = zv.cli("config", "tight", "--webhook-url", bad, check=False)
        assert out.returncode == 65 and "webhook URL" in out.stderr, out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
        assert call(port, "/webhook", token, "PUT", {"url": bad})[0] == 400
    assert zv.json("show", "tight")["webhook_url"] is None

    # ... and one already in the store (set before that check existed) fails its
    # deliveries instead of crashing the runner's dispatcher
    with sqlite3.connect(zv.home / "zapvisor.db") as db:
        db.execute(
            "UPDATE whatsapp_sessions SET webhook_url = ? WHERE session_name = 'tight'",
            ("http://127.0.0.1:99999/hook",),
        )
    zv.cli("qr", "tight", "--wait", "20")
    zv.cli("sim-scan", "tight")

    def failed() -> Any:
        rows = zv.json("webhooks", "tight")["deliveries"]
        return [r for r in rows if "invalid webhook URL" in (r.get("last_error") or "")]

    assert wait_for(failed, timeout=30, interval=0.5)
    assert call(port, "/health", None)[1]["pid"] == pid

    # no secret in any log the runner or supervisord wrote
    secret = (zv.home / "secrets" / "tight.webhook-secret").read_text().strip()
    logs = _logs(zv)
    assert "request failed" not in logs
    assert token not in logs and secret not in logs


@pytest.mark.e2e
def test_idle_connections_past_the_cap_get_a_503_at_once(tight: Tight) -> None:
    port = tight.port
    # idle connections (slowloris) are capped: past the cap a client gets a 503 at once
    # and the runner keeps its file descriptors; closing them brings the API back
    idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(140)]
    try:
        assert wait_for(lambda: raw_request(port, HEALTH)[0] == 503, timeout=20)
    finally:
        for sock in idle:
            sock.close()
    wait_for(lambda: raw_request(port, HEALTH)[0] == 200, timeout=20)
