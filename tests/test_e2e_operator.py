"""The operator's script from the README, run for real: a real supervisord, real runner
processes on real ports, the CLI as separate processes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.request
from typing import Any

import pytest

from tests.conftest import Env, wait_for
from tests.qrdecode import decode_half_blocks

pytestmark = pytest.mark.e2e


def health(port: int) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as resp:
            return json.loads(resp.read())  # type: ignore[no-any-return]
    except OSError:
        return None


def _two_sessions(zv: Env) -> tuple[dict[str, Any], dict[str, Any]]:
    a = zv.json("create", "cliente-001", "--connector", "sim")
    b = zv.json("create", "cliente-002", "--connector", "sim")
    return a, b


def test_create_gives_ports_in_order_and_list_shows_them(zv: Env) -> None:
    a, b = _two_sessions(zv)
    assert a["port"] == zv.base_port and b["port"] == zv.base_port + 1
    assert a["process_state"] in ("STARTING", "RUNNING")
    assert a["pid"]

    # /health answers on each allocated port, from the right session
    assert health(a["port"])["session"] == "cliente-001"  # type: ignore[index]
    assert health(b["port"])["session"] == "cliente-002"  # type: ignore[index]

    listing = zv.json("list")
    assert [s["name"] for s in listing] == ["cliente-001", "cliente-002"]
    for field in (
        "name",
        "port",
        "status",
        "desired_state",
        "pid",
        "phone",
        "connector",
        "last_error",
    ):
        assert field in listing[0]
    table = zv.cli("list").stdout
    assert "cliente-001" in table and str(zv.base_port) in table


def test_the_qr_pairs_and_the_pairing_survives_a_restart(make_env: Any) -> None:
    zv: Env = make_env(ZAPVISOR_SIM_QR_SECONDS="600")  # one QR for the whole test
    a, b = _two_sessions(zv)

    # the QR, printed as text, decodes to the payload the store holds
    qr = zv.cli("qr", "cliente-001", "--wait", "10", "--plain").stdout
    payload = zv.json("qr", "cliente-001")["qr_payload"]
    assert payload.startswith("2@") and len(payload) == 265
    assert decode_half_blocks(qr.split("\ncliente-001:")[0]) == payload

    zv.cli("sim-scan", "cliente-001")
    shown = zv.json("show", "cliente-001")
    assert shown["status"] == "connected"
    assert shown["phone"] and shown["phone"].isdigit()
    assert shown["port"] == zv.base_port and shown["pid"] == a["pid"]

    # restart: new pid for 001, 002 untouched; the pairing survives the restart
    restarted = zv.json("restart", "cliente-001")
    assert restarted["pid"] != a["pid"]
    assert zv.json("show", "cliente-002")["pid"] == b["pid"]
    wait_for(lambda: zv.json("show", "cliente-001")["status"] == "connected")
    assert zv.json("show", "cliente-001")["port"] == zv.base_port

    # logs: the runner's JSON lines, readable
    logs = zv.cli("logs", "cliente-001", "-n", "200").stdout
    assert "waiting_scan -> connected" in logs
    raw = zv.cli("logs", "cliente-001", "--raw").stdout.splitlines()
    assert all(json.loads(line)["session"] == "cliente-001" for line in raw if line)


def test_a_stopped_session_stays_stopped_and_delete_frees_its_port(zv: Env) -> None:
    a, b = _two_sessions(zv)

    # stop 002: it stays stopped when another session is created
    stopped = zv.json("stop", "cliente-002")
    assert stopped["pid"] is None and stopped["desired_state"] == "stopped"
    c = zv.json("create", "cliente-003", "--connector", "sim")
    assert c["port"] == zv.base_port + 2
    after = {s["name"]: s for s in zv.json("list")}
    assert after["cliente-002"]["process_state"] == "STOPPED"
    assert after["cliente-001"]["pid"] == a["pid"], "create restarted another session"
    assert health(b["port"]) is None

    # delete 002: program removed, port freed and handed out again
    zv.cli("delete", "cliente-002", "--yes")
    names = [s["name"] for s in zv.json("list")]
    assert names == ["cliente-001", "cliente-003"]
    assert zv.json("show", "cliente-001")["pid"] == a["pid"]
    d = zv.json("create", "cliente-004", "--connector", "sim")
    assert d["port"] == zv.base_port + 1

    # supervisorctl works on the same config
    ctl = subprocess.run(
        [
            sys.executable,
            "-m",
            "supervisor.supervisorctl",
            "-c",
            str(zv.home / "supervisord.conf"),
            "status",
        ],
        capture_output=True,
        text=True,
        env=zv.vars,
        timeout=30,
        check=False,
    )
    assert "wa-cliente-001" in ctl.stdout and "RUNNING" in ctl.stdout
    assert "wa-cliente-002" not in ctl.stdout


def test_restart_on_a_stopped_session_starts_it(zv: Env) -> None:
    zv.cli("create", "alpha", "--connector", "sim", "--stopped")
    assert zv.json("show", "alpha")["process_state"] == "STOPPED"
    started = zv.json("start", "alpha")
    assert started["pid"] and started["desired_state"] == "running"
    assert health(started["port"])["session"] == "alpha"  # type: ignore[index]


def test_supervisord_killed_comes_back_with_desired_states(zv: Env) -> None:
    """kill -9 supervisord: its runners go with it (no orphan keeps a port), and the next
    command brings supervisord back with each session in its desired state."""
    import os
    import signal

    up = zv.json("create", "up", "--connector", "sim")
    zv.json("create", "down", "--connector", "sim", "--stopped")
    pid = zv.supervisord_pid()
    assert pid
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: health(up["port"]) is None)
    listing = {s["name"]: s for s in zv.json("list")}
    assert listing["up"]["process_state"] in ("STARTING", "RUNNING")
    assert listing["up"]["pid"] != up["pid"]
    assert listing["down"]["process_state"] == "STOPPED"
    assert zv.supervisord_pid() != pid
    wait_for(lambda: (health(up["port"]) or {}).get("session") == "up")


def test_logs_follow_shows_new_lines(zv: Env) -> None:
    zv.json("create", "tail", "--connector", "sim")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli.main", "logs", "tail", "-f", "-n", "0"],
        env=zv.vars,
        stdout=subprocess.PIPE,
        text=True,
    )
    guard = threading.Timer(30, proc.terminate)  # never hang the suite on a missing line
    guard.start()
    try:
        zv.cli("qr", "tail", "--wait", "10")
        zv.cli("sim-scan", "tail")
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if "-> connected" in line:
                break
        assert any("waiting_scan -> connected" in ln for ln in seen)
    finally:
        guard.cancel()
        proc.terminate()
        proc.wait(timeout=10)
