"""`zapvisor doctor` says what is wrong and what to do, and exits non-zero on failures."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from ecosystem import runner_client
from tests.conftest import Env, wait_for

pytestmark = pytest.mark.e2e


def checks(env: Env) -> dict[str, dict[str, str]]:
    proc = env.cli("doctor", "--json", check=False)
    data = __import__("json").loads(proc.stdout)
    assert data["ok"] == (proc.returncode == 0)
    return {c["name"]: c for c in data["checks"]}


def test_doctor_reports_each_part(zv: Env) -> None:
    fresh = checks(zv)
    assert fresh["state dir"]["level"] == "ok"
    assert fresh["store"]["level"] == "ok" and "sqlite" in fresh["store"]["detail"]
    assert fresh["supervisord"]["level"] == "warn"
    assert "starts it" in fresh["supervisord"]["fix"]

    zv.cli("create", "alpha", "--connector", "sim")
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", zv.base_port + 5))
    blocker.listen()
    try:
        found = checks(zv)
    finally:
        blocker.close()
    assert found["supervisord"]["level"] == "ok"
    assert found["ports"]["level"] == "warn"
    assert f"{zv.base_port + 5} held by" in found["ports"]["detail"]
    assert f"pid {os.getpid()}" in found["ports"]["detail"]
    assert "1 used by sessions" in found["ports"]["detail"]

    (zv.home / "supervisord.conf").chmod(0o644)
    proc = zv.cli("doctor", check=False)
    assert proc.returncode == 1
    assert "FAIL" in proc.stdout and f"chmod 600 {zv.home / 'supervisord.conf'}" in proc.stdout


def test_doctor_warns_about_ports_in_the_ephemeral_range(zv: Env) -> None:
    text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
    lo, hi = (int(x) for x in text.split())
    zv.extra["BASE_PORT"] = str(lo + 100)
    found = checks(zv)
    assert found["port range"]["level"] == "warn"
    assert f"{lo}-{hi}" in found["port range"]["detail"]
    assert f"BASE_PORT below {lo}" in found["port range"]["fix"]
    zv.extra.pop("BASE_PORT")
    assert "port range" not in checks(zv)


def test_doctor_says_why_a_running_session_is_not_connected(zv: Env) -> None:
    """A runner that is up but has lost WhatsApp is a warning with its reason and a fix."""
    zv.cli("create", "alpha", "--connector", "sim")
    zv.cli("qr", "alpha", "--wait", "20")
    zv.cli("sim-scan", "alpha")
    assert "session alpha" not in checks(zv)

    port = zv.json("show", "alpha")["port"]
    token = (zv.home / "secrets" / "alpha.token").read_text().strip()
    status, _ = runner_client.call(
        "127.0.0.1",
        port,
        "/sim/disconnect",
        method="POST",
        token=token,
        body={"kind": "network", "seconds": 60},
        timeout=10,
    )
    assert status == 200
    wait_for(lambda: zv.json("show", "alpha")["status"] == "reconnecting")
    found = checks(zv)["session alpha"]
    assert found["level"] == "warn"
    assert found["detail"] == "reconnecting: network lost"
    assert "web.whatsapp.com" in found["fix"]


def test_a_corrupt_sim_auth_is_an_error_and_doctor_says_logout(zv: Env) -> None:
    """A phone of fullwidth digits is not a phone number: the auth is corrupt, the
    session says so, and doctor passes on the runner's advice (`logout`, which clears
    it), not `restart` (which would load the same file again)."""
    zv.cli("create", "alpha", "--connector", "sim", "--stopped")
    auth = zv.home / "tokens" / "alpha"
    auth.mkdir(parents=True, exist_ok=True)
    (auth / "sim-auth.json").write_text('{"phone": "\uff15\uff15\uff11\uff11\uff19\uff19"}')
    zv.cli("start", "alpha")
    shown = wait_for(lambda: (s := zv.json("show", "alpha"))["status"] == "error" and s)
    assert shown["phone"] is None and "is corrupt" in shown["last_error"]
    found = checks(zv)["session alpha"]
    assert found["level"] == "warn" and "is corrupt" in found["detail"]
    assert found["fix"] == "`zapvisor logout alpha`"
    zv.cli("logout", "alpha", "--yes")
    assert wait_for(lambda: zv.json("show", "alpha")["status"] == "waiting_scan")
