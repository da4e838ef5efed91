"""`zapvisor hosts add|list|check|remove|upgrade` against real remote hosts: Linux users
reached through a real OpenSSH sshd on loopback, each with its own state dir, ports,
host id and supervisord, all sharing one real PostgreSQL (tests/fleet_fixtures.py)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import psutil
import pytest

from ecosystem import __version__
from tests.conftest import wait_for
from tests.fleet_fixtures import Fleet

pytestmark = pytest.mark.e2e


def _alive(pid: int | None) -> bool:
    """Running (a zombie waiting for its parent to reap it is not)."""
    if not pid:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_add_list_check_and_remove_a_host(fleet: Fleet) -> None:
    host = fleet.host("vps-a")
    added = fleet.add(host, "--json")
    record = json.loads(added.stdout)["host"]
    assert record["name"] == "vps-a" and record["ssh_user"] == host.user.name
    assert record["ssh_port"] == fleet.sshd.port and record["version"] == __version__
    assert record["host_key"] == fleet.sshd.fingerprint
    assert record["zapvisor_path"] == f"{host.user.home}/.zapvisor/zapvisor"
    assert json.loads(added.stdout)["installed"] is None  # it had this version already

    # the host was asked about itself, so its supervisord runs, as the host's user
    pid = wait_for(host.supervisord_pid)
    assert _alive(pid)
    # its settings were written for it, readable by that user only
    env = host.user.home / ".zapvisor" / ".env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600 and env.stat().st_uid == host.user.uid
    text = env.read_text()
    assert "ZAPVISOR_HOST_ID='vps-a'" in text and fleet.store["ZAPVISOR_DATABASE_URL"] in text
    # the key is in zapvisor's own known_hosts, private
    known = fleet.control.home / "known_hosts"
    assert stat.S_IMODE(known.stat().st_mode) == 0o600
    assert f"[127.0.0.1]:{fleet.sshd.port} ssh-ed25519 " in known.read_text()

    listed = {h["name"]: h for h in fleet.control.json("hosts", "list")}
    assert set(listed) == {"control", "vps-a"}
    assert listed["control"]["local"] and listed["control"]["target"] == "local"
    vps = listed["vps-a"]
    assert vps["reachable"] and vps["error"] is None
    assert vps["target"] == f"{host.user.name}@127.0.0.1:{fleet.sshd.port}"
    assert vps["version"] == __version__ and vps["same_version"]
    assert (vps["sessions"], vps["max_sessions"]) == (0, 5)
    assert 0 < vps["latency_ms"] < 2000
    assert 0 <= vps["cpu_percent"] <= 100 and 0 < vps["mem_percent"] < 100
    assert vps["disk_total"] > 0 and vps["supervisord_pid"] == pid and vps["last_seen"]
    table = fleet.control.cli("hosts", "list").stdout
    assert "vps-a" in table and "0/5" in table and "LATENCY" in table

    report = json.loads(fleet.control.cli("hosts", "check", "vps-a", "--json").stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert report["ok"] and checks["ssh"]["level"] == "ok"
    assert fleet.sshd.fingerprint in checks["ssh"]["detail"]
    assert checks["zapvisor"]["level"] == "ok"
    assert "postgres" in checks["store"]["detail"] and "host vps-a" in checks["store"]["detail"]
    assert str(host.setup.home) in checks["state dir"]["detail"]

    events = fleet.control.json("events")
    adds = [e for e in events if e["action"] == "host_add"]
    assert len(adds) == 1 and adds[0]["detail"]["from"] == "control"
    assert adds[0]["detail"]["host"] == "vps-a"

    removed = fleet.control.cli("hosts", "remove", "vps-a")
    assert "removed vps-a" in removed.stdout
    assert [h["name"] for h in fleet.control.json("hosts", "list")] == ["control"]
    assert f"[127.0.0.1]:{fleet.sshd.port}" not in known.read_text()
    assert _alive(pid)  # the machine itself is left as it was


def test_a_host_with_sessions_is_not_removed(fleet: Fleet) -> None:
    host = fleet.host("vps-b")
    fleet.add(host)
    # a session created on the host itself lands in the shared store as vps-b's
    host.run("create", "cliente-1", "--connector", "sim")
    listed = {h["name"]: h for h in fleet.control.json("hosts", "list")}
    assert listed["vps-b"]["sessions"] == 1
    refused = fleet.control.cli("hosts", "remove", "vps-b", check=False)
    assert refused.returncode == 75, refused.stderr
    assert "cliente-1" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert "vps-b" in [h["name"] for h in fleet.control.json("hosts", "list")]

    # the host's supervisord is down (shut down by hand there): looking at the host brings
    # it back, as any zapvisor command there would, with the session meant to run
    before = host.supervisord_pid()
    host.run("shutdown")
    assert wait_for(lambda: not _alive(before))
    listed = {h["name"]: h for h in fleet.control.json("hosts", "list")}
    again = listed["vps-b"]["supervisord_pid"]
    assert listed["vps-b"]["reachable"] and _alive(again) and again != before
    assert wait_for(lambda: host.json("show", "cliente-1")["process_state"] == "RUNNING")

    host.run("delete", "cliente-1", "--yes")
    fleet.control.cli("hosts", "remove", "vps-b")
    assert [h["name"] for h in fleet.control.json("hosts", "list")] == ["control"]


def test_hosts_info_describes_this_machine(fleet: Fleet) -> None:
    facts = fleet.control.json("hosts", "info")
    assert facts["host_id"] == "control" and facts["version"] == __version__
    assert facts["registered"] is False  # this machine is the control side only
    assert facts["max_sessions"] == fleet.control.max_sessions
    assert Path(fleet.control.home / "supervisord.pid").exists()
