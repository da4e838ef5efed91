"""`zapvisor doctor` says what is wrong and what to do, and exits non-zero on failures."""

from __future__ import annotations

import json
import os
import socket
import subprocess
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
    # once supervisord's startsecs pass (commands finish sooner than that), nothing to say
    wait_for(lambda: "session alpha" not in checks(zv), timeout=15)

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
    # the runner says so inside supervisord's first second, while doctor still says
    # "starting": past it (RUNNING), doctor reads the session's own status
    shown = wait_for(
        lambda: (
            (s := zv.json("show", "alpha"))["status"] == "error"
            and s["process_state"] == "RUNNING"
            and s
        )
    )
    assert shown["phone"] is None and "is corrupt" in shown["last_error"]
    found = checks(zv)["session alpha"]
    assert found["level"] == "warn" and "is corrupt" in found["detail"]
    assert found["fix"] == "`zapvisor logout alpha`"
    zv.cli("logout", "alpha", "--yes")
    assert wait_for(lambda: zv.json("show", "alpha")["status"] == "waiting_scan")


def test_doctor_sees_port_drift_a_read_only_store_and_a_broken_config(zv: Env) -> None:
    """What doctor used to call OK: a stopped session's port taken by another process
    (also PORT TAKEN in `list`), a store that answers reads but refuses every write, and
    an empty or cut supervisord.conf."""
    zv.cli("create", "alpha", "--connector", "sim")
    zv.cli("create", "beta", "--connector", "sim", "--stopped")
    port = zv.json("show", "beta")["port"]
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", port))
    blocker.listen()
    try:
        found = checks(zv)["session beta"]
        assert found["level"] == "warn", found
        assert (
            f"port {port} is held by" in found["detail"] and f"pid {os.getpid()}" in found["detail"]
        )
        shown = zv.json("show", "beta")
        assert shown["port_conflict"].startswith("held by")
        assert f"port {port} is held by" in shown["why_down"]
        table = zv.cli("list").stdout
        assert any(ln.startswith("beta") and "PORT TAKEN" in ln for ln in table.splitlines())
    finally:
        blocker.close()
    assert zv.json("show", "beta")["port_conflict"] is None
    assert "session beta" not in checks(zv)

    db = zv.home / "zapvisor.db"
    if subprocess.run(["chattr", "+i", str(db)], capture_output=True).returncode == 0:
        try:
            proc = zv.cli("doctor", "--json", check=False)
            store = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}["store"]
            assert proc.returncode == 1
            assert store["level"] == "fail" and "refuses writes" in store["detail"], store
            assert "lsattr" in store["fix"]
        finally:
            subprocess.run(["chattr", "-i", str(db)], check=True)
    else:
        print("chattr +i does not work here: the read-only store case is not checked")
    assert checks(zv)["store"]["level"] == "ok"

    conf = zv.home / "supervisord.conf"
    good = conf.read_text()
    cut = good[: good.index("[program:wa-beta]")]
    for broken, said in (("", "(empty) is not a config supervisord accepts"), (cut, "wa-beta")):
        conf.write_text(broken)
        found = checks(zv)["config"]
        assert found["level"] == "fail" and said in found["detail"], found
        assert "`zapvisor apply`" in found["fix"]
    zv.cli("apply")
    assert conf.read_text() == good and "config" not in checks(zv)
    conf.write_text(good.replace("startsecs=1", "startsecs=2"))
    assert checks(zv)["config"]["level"] == "warn"


def test_with_a_corrupt_store_the_runners_ports_are_not_other_processes(zv: Env) -> None:
    zv.cli("create", "alpha", "--connector", "sim")
    port = zv.json("show", "alpha")["port"]
    db = zv.home / "zapvisor.db"
    for extra in ("-wal", "-shm"):
        Path(f"{db}{extra}").unlink(missing_ok=True)
    db.write_bytes(b"this is not a database" * 100)
    found = checks(zv)
    assert found["store"]["level"] == "fail"
    ports = found["ports"]
    assert "bound by other processes" not in ports["detail"], ports
    assert f"{port} (alpha)" in ports["detail"] and ports["level"] == "ok"


def test_a_monitor_starting_with_supervisord_is_not_a_failure(zv: Env) -> None:
    """For the second after supervisord starts, its monitor is STARTING: fine."""
    from ecosystem.doctor import monitor_check
    from ecosystem.orchestrator import Orchestrator
    from ecosystem.states import ProcessState
    from ecosystem.supctl.rpc import ProcessInfo

    info = ProcessInfo("zapvisor-health", ProcessState.STARTING, 4242, 1, 1, 0, 0, "", "")
    found = monitor_check(Orchestrator(zv.settings()), info)
    assert found.level == "ok" and "starting" in found.detail
