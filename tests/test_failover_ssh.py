"""Failover across hosts reached by real OpenSSH: the control side (a host too, with its
own supervisord and health monitor) and two remote hosts, each a Linux user of its own
behind a real sshd, with its own state dir, port block, supervisord and monitor, all
sharing one real PostgreSQL. WhatsApp cannot be reached from here: sim sessions stand
in for it, and their simulated server (in the store) keeps one connection per device
and records each, which is what proves "same device, never two connections at once"."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator

import psutil
import pytest

from ecosystem.lease import Lease
from ecosystem.models import Session, utcnow
from ecosystem.store.postgres import PostgresStore
from tests.conftest import wait_for
from tests.failover_hosts import (
    Proxy,
    connected_on,
    dsn_through,
    gone_or_zombie,
    host_vars,
    kill_all,
    overlaps,
    process_tree,
    signal_all,
    statuses_since,
    target_of,
    thaw_all,
)
from tests.fleet_fixtures import Fleet, RemoteHost
from tests.sshd import SshServer

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("fleet-e2e")]

FAILOVER_WITHIN = 60.0
"""Lease (6 s) + a survivor's next check + a runner's start, with room for a machine
shared by many test workers. Not a measure: scripts/bench/failover_bench.py is."""


def _quick() -> dict[str, str]:
    """Short leases and checks (the fleet's store and host id aside)."""
    return {
        k: v
        for k, v in host_vars("", "").items()
        if k not in ("ZAPVISOR_DATABASE_URL", "ZAPVISOR_HOST_ID")
    }


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


def _hosts(
    fleet: Fleet, *, sshd: SshServer | None = None, vps1_env: dict[str, str] | None = None
) -> tuple[RemoteHost, RemoteHost]:
    """vps-1 (behind ``sshd`` when given, with ``vps1_env`` in its .env) and vps-2, added
    to the fleet, with short leases and checks everywhere (the control side's env, and
    each host's .env once `hosts add` wrote it)."""
    fleet.control.extra.update(_quick())
    vps1 = fleet.host("vps-1", sshd=sshd, max_sessions=3)
    vps2 = fleet.host("vps-2", max_sessions=3)
    fleet.add(vps1)
    fleet.add(vps2)
    vps1.set_env({**_quick(), **(vps1_env or {})})
    vps2.set_env(_quick())
    return vps1, vps2


def _started(fleet: Fleet, store: PostgresStore, *others: RemoteHost) -> None:
    """The control host's supervisord and monitor, and the other hosts', up and beating."""
    fleet.control.cli("apply")
    for host in others:
        host.run("apply")
    live = {"control", *(h.name for h in fleet.hosts)}
    wait_for(lambda: {h.host for h in store.fleet_state().hosts if h.live} >= live, timeout=60)


def test_kill_9_a_host_reached_over_ssh_its_sessions_come_back_elsewhere(
    fleet: Fleet, make_sshd: Callable[[], SshServer], pg_store: PostgresStore
) -> None:
    """Every process of vps-1 gets SIGKILL at once and its sshd stops: its session with
    auth in the store is connected on the control host or vps-2 with the same phone and
    device, no new QR; its session with local auth stays, reported by an alert."""
    store = pg_store
    doomed_sshd = make_sshd()
    vps1, vps2 = _hosts(fleet, sshd=doomed_sshd)
    phone = _paired(fleet, "moving", "vps-1")
    _paired(fleet, "pinned", "vps-1", "--auth", "local")
    auth = store.sim_auth("moving")
    assert auth is not None and auth.phone == phone
    device = auth.device
    _started(fleet, store, vps2)
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


def _program_gone(host: RemoteHost, name: str) -> bool:
    return f"wa-{name}" not in host.run("ctl", "status").stdout


def test_a_frozen_host_reached_over_ssh_wakes_to_find_its_runner_fenced_off(
    fleet: Fleet, make_sshd: Callable[[], SshServer], pg_store: PostgresStore
) -> None:
    """Every process of vps-1 (its user's: supervisord, monitor, runner, agent; and its
    sshd) is SIGSTOPped until its session is connected elsewhere, then SIGCONTed: the
    runner, whose lease lapsed and was taken, writes nothing of the session's (the epoch
    fence), says so in the audit trail and stops without connecting the device again;
    vps-1's monitor removes its program."""
    store = pg_store
    frozen_sshd = make_sshd()
    vps1, vps2 = _hosts(fleet, sshd=frozen_sshd)
    phone = _paired(fleet, "moving", "vps-1")
    auth = store.sim_auth("moving")
    assert auth is not None and auth.phone == phone
    old_pid = int(fleet.control.json("show", "moving")["pid"])
    _started(fleet, store, vps2)

    frozen = _user_processes(vps1) + process_tree(frozen_sshd.pid)
    assert {old_pid, vps1.supervisord_pid()} < {p.pid for p in frozen}
    frozen_at = utcnow()
    signal_all(frozen, signal.SIGSTOP)
    try:
        moved = wait_for(
            lambda: connected_on(store, "moving", {"control", "vps-2"}), timeout=FAILOVER_WITHIN
        )
        elsewhere_at = utcnow()
    finally:
        thaw_all([p.pid for p in frozen])
    assert moved.phone == phone, "same phone"
    assert "waiting_scan" not in statuses_since(store, "moving", frozen_at), "no new QR"

    wait_for(lambda: gone_or_zombie(old_pid), timeout=30)
    said = wait_for(
        lambda: [
            e
            for e in store.list_events("moving", limit=200)
            if e.action == "lease_lost" and e.detail.get("pid") == old_pid
        ],
        timeout=15,
    )
    assert said[0].detail["host"] == "vps-1"
    wait_for(lambda: _program_gone(vps1, "moving"), timeout=30)
    events = store.list_events("moving", limit=200)
    assert ("moved_away", "health@vps-1") in {(e.action, e.actor) for e in events}
    after = [e.to_status for e in events if e.action == "status" and e.ts >= elsewhere_at]
    assert after == [], "the fenced runner wrote no status"
    still = store.get_session("moving")
    assert (still.host, str(still.status), still.phone) == (moved.host, "connected", phone)
    assert {link.device for link in store.sim_links("moving")} == {auth.device}, "same device"
    vps1_links = [link for link in store.sim_links("moving") if link.host == "vps-1"]
    assert len(vps1_links) == 1, "vps-1 never connected the device again"
    assert overlaps(store) == [], "never two connections to one device at once"


@pytest.fixture
def db_proxy(pg_dsn: str) -> Iterator[Proxy]:
    """A cuttable link to the database. Asked for before ``fleet``, so it is closed only
    after the fleet's hosts were shut down (through it)."""
    proxy = Proxy(target_of(pg_dsn))
    yield proxy
    proxy.cut.clear()
    proxy.close()


def test_a_host_cut_off_from_the_store_over_ssh_lets_go_before_its_lease_can_be_taken(
    db_proxy: Proxy, fleet: Fleet, pg_dsn: str, pg_store: PostgresStore
) -> None:
    """vps-1 reaches the database through a TCP proxy the test cuts (a black hole: bytes
    swallowed, new connections never answered); the rest of it runs on, its sshd and
    agent included, and its runner still reaches the simulated WhatsApp server (its
    ZAPVISOR_SIM_SERVER_URL goes to the database directly). The runner lets go of the
    device before its lease ends (both on the database's clock), then another host takes
    the session: same phone, no new QR, never two connections. When the link heals,
    vps-1's monitor removes its program and the device stays where it went."""
    store = pg_store
    through = {
        "ZAPVISOR_DATABASE_URL": dsn_through(pg_dsn, db_proxy),
        "ZAPVISOR_SIM_SERVER_URL": pg_dsn,
    }
    vps1, vps2 = _hosts(fleet, vps1_env=through)
    phone = _paired(fleet, "moving", "vps-1")
    _started(fleet, store, vps2)

    db_proxy.cut.set()
    cut_at = utcnow()
    held: list[Lease] = []

    def elsewhere() -> Session | None:
        lease = store.lease_info("moving").lease
        if lease is not None and lease.holder == "vps-1":
            held[:] = [lease]  # the last renewal that reached the database
        return connected_on(store, "moving", {"control", "vps-2"})

    try:
        moved = wait_for(elsewhere, timeout=FAILOVER_WITHIN)
    except AssertionError:
        raise AssertionError(
            f"not taken over: {store.lease_info('moving')!r}, {store.sim_links('moving')!r}"
        ) from None
    try:
        assert held, "the lease was vps-1's when the link was cut"
        lease_end = held[0].expires_at
        (vps1_link,) = [link for link in store.sim_links("moving") if link.host == "vps-1"]
        assert vps1_link.close_reason == "lease", "vps-1 let go: its lease was not renewed"
        assert vps1_link.closed_at is not None and vps1_link.closed_at < lease_end, (
            f"let go at {vps1_link.closed_at}, before its lease could be taken ({lease_end})"
        )
        failover = next(e for e in store.list_events("moving") if e.action == "failover")
        assert failover.ts >= lease_end, "taken only once the lease had ended"
        assert (failover.detail["from"], failover.detail["to"]) == ("vps-1", moved.host)
        assert moved.phone == phone, "same phone"
        assert "waiting_scan" not in statuses_since(store, "moving", cut_at), "no new QR"
        assert overlaps(store) == [], "never two connections to one device at once"
    finally:
        db_proxy.cut.clear()
    wait_for(lambda: _program_gone(vps1, "moving"), timeout=60)
    vps1_links = [link for link in store.sim_links("moving") if link.host == "vps-1"]
    assert len(vps1_links) == 1, "vps-1 never connected the device again"
    assert connected_on(store, "moving", {moved.host}) is not None
    assert overlaps(store) == []
