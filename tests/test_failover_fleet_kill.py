"""A host of a fleet dies, for real but without SSH: the control side runs on host-a and
reaches host-b through the real `zapvisor agent --stdio`, started as a subprocess whose
pipes stand in for the SSH channel (tests/fleet_local.py); each host has its own state
dir, port block, supervisord and health monitor, and both share one real PostgreSQL.
WhatsApp cannot be reached from here: sim sessions stand in for it, and their simulated
server (in the store) keeps one connection per device and records every one of them,
which is what proves "same device, never two connections at once"."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

import psutil
import pytest

from ecosystem.models import NewSession, utcnow
from ecosystem.states import Status
from ecosystem.store.postgres import PostgresStore
from tests.conftest import Env, wait_for
from tests.failover_hosts import (
    connected_on,
    gone_or_zombie,
    host_vars,
    kill_all,
    overlaps,
    process_tree,
    statuses_since,
    thaw_all,
)
from tests.fleet_local import LocalFleet

pytestmark = pytest.mark.e2e

FAILOVER_WITHIN = 60.0
"""Lease (6 s) + host-a's next check + two runners' start, with room for a machine
shared by many test workers. Not a measure: scripts/bench/failover_bench.py is."""


@pytest.fixture
def fleet(make_env: Callable[..., Env], pg_dsn: str) -> Iterator[LocalFleet]:
    local = make_env(max_sessions=4, **host_vars(pg_dsn, "host-a"))
    remote = make_env(max_sessions=4, **host_vars(pg_dsn, "host-b"))
    made = LocalFleet(pg_dsn, local, "host-a", {"host-b": remote})
    yield made
    made.close()


@dataclass(frozen=True)
class Paired:
    phone: str
    device: str
    pid: int
    """Its runner on host-b."""


def _paired_on_b(fleet: LocalFleet, store: PostgresStore, *names: str) -> dict[str, Paired]:
    """Sessions created and paired on host-b from the control side, host-a up."""
    orch = fleet.orchestrator()
    paired = {}
    for name in names:
        orch.create(NewSession(name=name, connector="sim"), host="host-b")
        assert orch.qr(name, wait=15).payload
        phone = orch.sim_scan(name, wait=15).session.phone
        wait_for(lambda n=name: connected_on(store, n, {"host-b"}), timeout=30)
        auth = store.sim_auth(name)
        assert auth is not None and phone and auth.phone == phone
        paired[name] = Paired(phone, auth.device, orch.show(name).pid or 0)
    fleet.local.cli("apply")  # host-a's supervisord and monitor (heartbeats, claims)
    wait_for(lambda: {h.host for h in store.fleet_state().hosts if h.live} >= {"host-a", "host-b"})
    return paired


def _came_back_on_a(
    fleet: LocalFleet, store: PostgresStore, paired: dict[str, Paired], since: datetime
) -> float:
    """Wait until every session runs on host-a; check it is the same device and phone,
    and the failover record. Returns the seconds it took."""
    began = time.monotonic()
    # read once nothing of host-b renews: the claim must come after these expire
    held = {n: store.lease_info(n).lease for n in paired}
    for name in paired:
        wait_for(lambda n=name: connected_on(store, n, {"host-a"}), timeout=FAILOVER_WITHIN)
    took = time.monotonic() - began
    for name, was in paired.items():
        moved = store.get_session(name)
        assert moved.phone == was.phone, "same phone"
        assert moved.port in range(fleet.local.base_port, fleet.local.base_port + 4)
        assert "waiting_scan" not in statuses_since(store, name, since), "no new QR"
        assert {link.device for link in store.sim_links(name)} == {was.device}, "same device"
        lease, before = store.lease_info(name).lease, held[name]
        assert before is not None and before.holder == "host-b"
        assert lease is not None and lease.holder == "host-a" and lease.epoch > before.epoch
        failover = next(e for e in store.list_events(name) if e.action == "failover")
        assert failover.ts >= before.expires_at, "claimed only once host-b's lease ran out"
        assert (failover.detail["from"], failover.detail["to"]) == ("host-b", "host-a")
        assert (
            f"failover of {name} from host-b to host-a: host-b silent since"
            in (failover.detail["message"])
        )
    assert overlaps(store) == [], "never two connections to one device at once"
    return took


def test_host_b_killed_its_sessions_come_back_on_host_a_with_the_same_device(
    fleet: LocalFleet, pg_store: PostgresStore
) -> None:
    """host-b's supervisord, monitor, runners and agent get SIGKILL at once."""
    paired = _paired_on_b(fleet, pg_store, "one", "two")
    b = fleet.remotes["host-b"]
    doomed = process_tree(b.supervisord_pid())
    doomed += [psutil.Process(pid) for pid in fleet.agents["host-b"]]
    assert {w.pid for w in paired.values()} < {p.pid for p in doomed}
    fleet.down.add("host-b")  # its sshd is gone too: no new link
    killed_at = utcnow()
    kill_all(doomed)
    took = _came_back_on_a(fleet, pg_store, paired, killed_at)
    assert took < FAILOVER_WITHIN
    b_links = [link for link in pg_store.sim_links() if link.host == "host-b"]
    assert sorted(link.close_reason or "" for link in b_links) == ["expired", "expired"]

    # the control side sees them on host-a now, through its own door
    orch = fleet.orchestrator()
    for name in paired:
        shown = orch.show(name)
        assert (shown.session.host, shown.unreachable, shown.session.status) == (
            "host-a",
            None,
            Status.CONNECTED,
        )
        assert shown.pid is not None and shown.lease is not None
    print(f"\nhost-b killed: 2 sessions connected on host-a {took:.1f} s later")


def test_host_b_frozen_wakes_to_find_its_runners_fenced_off(
    fleet: LocalFleet, pg_store: PostgresStore
) -> None:
    """Every process of host-b (supervisord, monitor, runners, agent) is SIGSTOPped until
    host-a has its sessions, then SIGCONTed: the runners, whose lease lapsed and was
    taken, write nothing of their session's (status, outbox, auth: the epoch fence),
    say so in the audit trail and stop; host-b's monitor removes their programs."""
    store = pg_store
    paired = _paired_on_b(fleet, store, "one", "two")
    b = fleet.remotes["host-b"]
    frozen = [p.pid for p in process_tree(b.supervisord_pid())] + fleet.agents["host-b"]
    frozen_at = utcnow()
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        _came_back_on_a(fleet, store, paired, frozen_at)
        a_connected = utcnow()
    finally:
        thaw_all(frozen)

    for name, was in paired.items():
        wait_for(lambda pid=was.pid: gone_or_zombie(pid), timeout=30)
        said = wait_for(
            lambda n=name, pid=was.pid: [
                e
                for e in store.list_events(n, limit=200)
                if e.action == "lease_lost" and e.detail.get("pid") == pid
            ],
            timeout=15,
        )
        assert said[0].detail["host"] == "host-b"
        after = [e for e in store.list_events(name, limit=200) if e.ts >= a_connected]
        assert [e.to_status for e in after if e.action == "status"] == [], "no status written"
        still = store.get_session(name)
        assert (still.host, still.status, still.phone) == ("host-a", Status.CONNECTED, was.phone)
        b_links = [link for link in store.sim_links(name) if link.host == "host-b"]
        assert len(b_links) == 1, "host-b never connected the device again"
    wait_for(lambda: "wa-" not in b.cli("ctl", "status", check=False).stdout, timeout=30)
    for name in paired:
        trail = {(e.action, e.actor) for e in store.list_events(name, limit=200)}
        assert ("moved_away", "health@host-b") in trail
    assert overlaps(store) == [], "never two connections to one device at once"
