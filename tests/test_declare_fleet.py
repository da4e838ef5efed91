"""A fleet file's [hosts.NAME] tables against a real remote host (a Linux user behind a
real OpenSSH sshd on loopback, sharing a real PostgreSQL; tests/fleet_fixtures.py):
plan shows the host to add and changes nothing; apply without a terminal refuses a host
whose key the file does not pin, then adds it as `hosts add` does and creates a session
there in the same run; a changed host, and a session with local auth put on another
host (a move it cannot make without a new QR), are shown by plan and refused whole by
apply; export round-trips; prune removes a host only once it holds no session. (A move
that apply makes is in tests/test_failover_fleet.py.)"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import wait_for
from tests.fleet_fixtures import Fleet

pytestmark = pytest.mark.e2e


def _steps(plan: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(s["action"], s["kind"], s["name"]) for s in plan["steps"]]


def test_hosts_planned_added_refused_exported_and_pruned(fleet: Fleet) -> None:
    host = fleet.host("vps-a")
    zv = fleet.control
    head = (
        f'[hosts.vps-a]\ntarget = "{host.user.name}@127.0.0.1:{fleet.sshd.port}"\n'
        f"base_port = {host.setup.base_port}\nmax_sessions = {host.setup.max_sessions}\n"
        f'identity = "{fleet.key.path}"\n'
    )
    session = '\n[sessions.remota]\nhost = "vps-a"\nconnector = "sim"\nstate = "stopped"\n'
    path = zv.home.parent / "fleet.toml"

    def write(text: str) -> str:
        path.write_text(text)
        return str(path)

    unpinned = write(head + session)
    plan = zv.json("plan", "-f", unpinned)
    assert _steps(plan) == [("create", "host", "vps-a"), ("create", "session", "remota")]
    text = zv.cli("plan", "-f", unpinned).stdout
    assert "+ create host vps-a" in text and "host_key: not in the file" in text
    refused = zv.cli("apply", "-f", unpinned, "--yes", check=False)
    assert refused.returncode == 65 and "line 1: host vps-a has no host_key" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert fleet.registered() == [] and zv.json("list") == []

    pinned = write(head + f'host_key = "{fleet.sshd.fingerprint}"\n' + session)
    zv.cli("apply", "-f", pinned, "--yes")
    assert fleet.registered() == ["vps-a"]
    [made] = zv.json("list")
    assert (made["name"], made["host"]) == ("remota", "vps-a")
    again = zv.json("plan", "-f", pinned)
    assert again["steps"] == [] and again["hosts_unchanged"] == ["vps-a"]

    # a host that differs from its record, and a session with local auth put on another
    # host: shown, and refused whole by apply (nothing changed)
    zv.cli("failover", "remota", "--auth", "local")
    text = (
        path.read_text()
        .replace(f"max_sessions = {host.setup.max_sessions}", "max_sessions = 9")
        .replace('host = "vps-a"', 'host = "control"')
    )
    other = write(text)
    plan = zv.json("plan", "-f", other)
    assert _steps(plan) == [("change", "host", "vps-a"), ("move", "session", "remota")]
    move = plan["steps"][1]
    assert (move["from_host"], move["host"]) == ("vps-a", "control") and move["refused"]
    shown = zv.cli("plan", "-f", other).stdout
    assert "~ change host vps-a" in shown
    assert f"max_sessions: {host.setup.max_sessions} → 9" in shown
    assert "> move remota from vps-a to control" in shown and "auth local" in shown
    proc = zv.cli("apply", "-f", other, "--yes", check=False)
    assert proc.returncode == 65 and "hosts remove vps-a" in proc.stderr
    assert "(and 1 more step(s) apply refuses)" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    write(head + session.replace('"vps-a"', '"control"'))
    moved = zv.cli("apply", "-f", str(path), "--yes", check=False)
    assert moved.returncode == 65 and len(moved.stderr.strip().splitlines()) == 1
    for said in ("remota runs on vps-a", "puts it on control", "zapvisor delete remota"):
        assert said in moved.stderr
    assert zv.json("list")[0]["host"] == "vps-a"

    exported = zv.home.parent / "exported.toml"
    zv.cli("export", "-o", str(exported))
    written = exported.read_text()
    assert "[hosts.vps-a]" in written and fleet.sshd.fingerprint in written
    assert zv.json("plan", "-f", str(exported), "--prune")["steps"] == []

    # prune: a host still holding a session is left alone; once its session goes, it goes
    keep = write("[hosts]\n" + session)
    plan = zv.json("plan", "-f", keep, "--prune")
    assert plan["steps"] == [] and plan["hosts_left_alone"] == ["vps-a"]
    empty = write("[hosts]\n")
    plan = zv.json("plan", "-f", empty, "--prune")
    assert _steps(plan) == [("delete", "session", "remota"), ("remove", "host", "vps-a")]
    assert json.loads(zv.cli("apply", "-f", empty, "--prune", "--yes", "--json").stdout)["done"]
    assert fleet.registered() == [] and zv.json("list") == []


def test_a_host_repointed_in_place_and_its_failover_switched(fleet: Fleet) -> None:
    """A host's new login in the file re-points it (the same row, its sessions and
    their runners untouched), and accepts_failover, read from its heartbeat, is switched
    on the host itself; export writes both, and applying again changes nothing."""
    from ecosystem.store.postgres import PostgresStore

    host = fleet.host("vps-b")
    zv = fleet.control
    fleet.add(host)
    zv.json("create", "remota", "--connector", "sim", "--host", "vps-b")
    store = PostgresStore(fleet.store["ZAPVISOR_DATABASE_URL"])
    try:
        wait_for(lambda: (b := store.fleet_state().host("vps-b")) is not None and b.live, 60, 0.5)
        added = store.get_host("vps-b").added_at
        before = [(s["name"], s["pid"], s["port"]) for s in zv.json("list")]
        assert before[0][1], "the remote runner is not up"
        path = zv.home.parent / "fleet.toml"
        zv.cli("export", "-o", str(path))
        exported = path.read_text()
        assert "accepts_failover = true" in exported
        path.write_text(
            exported.replace("@127.0.0.1:", "@localhost:").replace(
                "accepts_failover = true", "accepts_failover = false"
            )
        )

        plan = zv.json("plan", "-f", str(path))
        assert _steps(plan) == [("change", "host", "vps-b")]
        assert plan["steps"][0]["fields"] == ["target", "accepts_failover"]
        shown = zv.cli("plan", "-f", str(path)).stdout
        port = fleet.sshd.port
        user = host.user.name
        assert f"target: {user}@127.0.0.1:{port} → {user}@localhost:{port}" in shown
        assert "accepts_failover: true → false" in shown and "refuses" not in shown
        assert store.get_host("vps-b").address == "127.0.0.1"

        # a login that reaches another machine (here: another zapvisor host) is refused
        other = fleet.host("vps-c")
        wrong = zv.cli(
            "hosts", "repoint", "vps-b", other.target, "--port", str(port),
            "--identity", str(fleet.key.path), check=False,
        )  # fmt: skip
        assert wrong.returncode != 0 and len(wrong.stderr.strip().splitlines()) == 1
        assert "is host 'vps-c' (its ZAPVISOR_HOST_ID), not vps-b" in wrong.stderr
        assert store.get_host("vps-b").ssh_user == user

        zv.cli("apply", "-f", str(path), "--yes")
        record = store.get_host("vps-b")
        assert (record.address, record.added_at) == ("localhost", added)
        beat = store.fleet_state().host("vps-b")
        assert beat is not None and beat.accepts_failover is False
        assert [(s["name"], s["pid"], s["port"]) for s in zv.json("list")] == before
        again = zv.json("plan", "-f", str(path))
        assert again["steps"] == [] and again["hosts_unchanged"] == ["vps-b"]
    finally:
        store.close()
