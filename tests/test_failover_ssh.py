"""Failover across hosts reached by real OpenSSH: the control side (a host too, with its
own supervisord and health monitor) and two remote hosts, each a Linux user of its own
behind a real sshd, with its own state dir, port block, supervisord and monitor, all
sharing one real PostgreSQL. WhatsApp cannot be reached from here: sim sessions stand
in for it, and their simulated server (in the store) keeps one connection per device
and records each, which is what proves "same device, never two connections at once"."""

from __future__ import annotations

from collections.abc import Callable

import psutil
import pytest

from ecosystem.models import utcnow
from ecosystem.store.postgres import PostgresStore
from tests.conftest import wait_for
from tests.failover_hosts import connected_on, host_vars, kill_all, overlaps, statuses_since
from tests.fleet_fixtures import Fleet, RemoteHost
from tests.sshd import SshServer

pytestmark = pytest.mark.e2e

FAILOVER_WITHIN = 90.0
"""Lease (6 s) + a survivor's next check + a runner's start, with room for a machine
shared by many test workers. Not a measure: scripts/bench/failover_bench.py is."""


def _failover_settings(fleet: Fleet) -> None:
    """Short leases and checks on every host of the fleet (their .env, written by the
    fixture from ``fleet.store``, and the control side's environment)."""
    quick = {
        k: v
        for k, v in host_vars("", "").items()
        if k not in ("ZAPVISOR_DATABASE_URL", "ZAPVISOR_HOST_ID")
    }
    fleet.store.update(quick)
    fleet.control.extra.update(quick)


def _user_processes(host: RemoteHost) -> list[psutil.Process]:
    """Everything the host's user runs: supervisord, monitor, runners, agents, and its
    sshd session processes."""
    return [
        p
        for p in psutil.process_iter(["uids"])
        if p.info["uids"] and p.info["uids"].real == host.user.uid
    ]


def _paired(fleet: Fleet, name: str, host: str, *extra: str) -> str:
    fleet.control.cli("create", name, "--connector", "sim", "--host", host, *extra)
    fleet.control.cli("qr", name, "--wait", "30")
    return str(fleet.control.json("sim-scan", name)["phone"])


def test_kill_9_a_host_reached_over_ssh_its_sessions_come_back_elsewhere(
    fleet: Fleet, make_sshd: Callable[[], SshServer], pg_store: PostgresStore
) -> None:
    """Every process of vps-1 gets SIGKILL at once and its sshd stops: its session with
    auth in the store is connected on the control host or vps-2 with the same phone and
    device, no new QR; its session with local auth stays, reported by an alert."""
    store = pg_store
    _failover_settings(fleet)
    doomed_sshd = make_sshd()
    vps1 = fleet.host("vps-1", sshd=doomed_sshd, max_sessions=3)
    vps2 = fleet.host("vps-2", max_sessions=3)
    fleet.add(vps1)
    fleet.add(vps2)
    phone = _paired(fleet, "moving", "vps-1")
    _paired(fleet, "pinned", "vps-1", "--auth", "local")
    auth = store.sim_auth("moving")
    assert auth is not None and auth.phone == phone
    device = auth.device
    fleet.control.cli("apply")  # the control host's supervisord and monitor
    vps2.run("apply")
    live = {"control", "vps-1", "vps-2"}
    wait_for(lambda: {h.host for h in store.fleet_state().hosts if h.live} >= live, timeout=60)
    assert connected_on(store, "moving", {"vps-1"}) and connected_on(store, "pinned", {"vps-1"})

    doomed = _user_processes(vps1)
    assert vps1.supervisord_pid() in {p.pid for p in doomed}
    killed_at = utcnow()
    kill_all(doomed)
    doomed_sshd.stop()

    moved = wait_for(
        lambda: connected_on(store, "moving", {"control", "vps-2"}), timeout=FAILOVER_WITHIN
    )
    assert moved.phone == phone, "same phone"
    assert "waiting_scan" not in statuses_since(store, "moving", killed_at), "no new QR"
    assert {link.device for link in store.sim_links("moving")} == {device}, "same device"
    assert [link.close_reason for link in store.sim_links("moving") if link.host == "vps-1"] == [
        "expired"
    ]
    failover = next(e for e in store.list_events("moving") if e.action == "failover")
    assert (failover.detail["from"], failover.detail["to"]) == ("vps-1", moved.host)
    assert "vps-1 silent since" in failover.detail["message"]

    # the local-auth session is reported, not moved
    assert store.get_session("pinned").host == "vps-1"
    alerts = wait_for(
        lambda: [a for a in store.list_alerts(None, active=True) if a.key == "host_silent:vps-1"],
        timeout=30,
    )
    assert "pinned" in alerts[0].message and "moving" not in alerts[0].message
    # the control side shows where it runs now, vps-1 unreachable
    listed = {s["name"]: s for s in fleet.control.json("list")}
    assert listed["moving"]["host"] == moved.host
    assert overlaps(store) == [], "never two connections to one device at once"
