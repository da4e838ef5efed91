"""A real runner's HTTP API: open /health, everything else behind the session's token."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Env, wait_for
from tests.rawhttp import exchange

pytestmark = pytest.mark.e2e


def raw_request(port: int, text: str) -> tuple[int, dict[str, str], bytes]:
    return exchange(port, text.encode("latin-1"))


def get(
    port: int, path: str, token: str | None = None, method: str = "GET", extra: str = ""
) -> tuple[int, dict[str, str], bytes]:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return raw_request(
        port, f"{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}{extra}Content-Length: 0\r\n\r\n"
    )


def test_api_auth_and_errors(zv: Env) -> None:
    session = zv.json("create", "api-test", "--connector", "sim")
    port = session["port"]
    token = (zv.home / "secrets" / "api-test.token").read_text().strip()

    status, _, body = get(port, "/health")
    assert status == 200 and json.loads(body)["session"] == "api-test"

    status, headers, body = get(port, "/status")
    assert status == 401 and headers["www-authenticate"] == "Bearer"
    assert get(port, "/status", token="zv_wrong")[0] == 401
    assert get(port, "/status", token=token.upper())[0] == 401

    status, _, body = get(port, "/status", token=token)
    data = json.loads(body)
    assert status == 200 and data["sessionId"] == "api-test" and data["connector"] == "sim"

    wait_for(lambda: json.loads(get(port, "/qrcode", token=token)[2]).get("qr"))
    qr = json.loads(get(port, "/qrcode", token=token)[2])
    assert qr["status"] == "waiting_scan"
    assert qr["qrCode"].startswith("data:image/png;base64,")
    assert qr["qr"] == zv.json("show", "api-test")["qr_payload"]

    assert get(port, "/nope", token=token)[0] == 404
    status, headers, _ = get(port, "/status", token=token, method="DELETE")
    assert status == 405 and headers["allow"] == "GET"
    status, _, body = raw_request(
        port,
        f"POST /sim/scan HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Length: {11 * 1024 * 1024}\r\n\r\n",
    )
    assert status == 413 and b"limit" in body
    assert raw_request(port, "garbage\r\n\r\n")[0] == 400

    # the runner survived all of it and the token still works
    assert get(port, "/status", token=token)[0] == 200
