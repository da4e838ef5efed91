"""A planned move through the fleet's links, for real but without SSH: the control side
on host-a reaches host-b and host-c through the real `zapvisor agent --stdio`, started
as subprocesses whose pipes stand in for SSH channels (tests/fleet_local.py); every host
has its own state dir, port block, supervisord and health monitor, and all share one
real PostgreSQL. WhatsApp cannot be reached from here: sim sessions, whose simulated
server records every connection of each device, stand in for it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from ecosystem.models import NewSession, utcnow
from ecosystem.store.postgres import PostgresStore
from tests.conftest import Env, wait_for
from tests.failover_hosts import connected_on, host_vars, overlaps, statuses_since
from tests.fleet_local import LocalFleet

pytestmark = pytest.mark.e2e

MONITOR_EVERY = 120.0
"""The remote hosts' health checks: far apart, so a move done within that was done by
their agents at once, not by their monitors."""


@pytest.fixture
def store(pg_store: PostgresStore) -> PostgresStore:
    return pg_store


@pytest.fixture
def fleet(make_env: Callable[..., Env], pg_dsn: str) -> Iterator[LocalFleet]:
    slow = {"ZAPVISOR_HEALTH_INTERVAL": str(MONITOR_EVERY)}
    local = make_env(**host_vars(pg_dsn, "host-a"))
    remotes = {
        h: make_env(max_sessions=4, **host_vars(pg_dsn, h, **slow)) for h in ("host-b", "host-c")
    }
    made = LocalFleet(pg_dsn, local, "host-a", remotes)
    yield made
    made.close()


def test_a_move_between_two_remote_hosts_is_done_by_their_agents(
    fleet: LocalFleet, store: PostgresStore
) -> None:
    orch = fleet.orchestrator()
    view = orch.create(NewSession(name="moving", connector="sim"), host="host-b")
    assert str(view.session.auth) == "store"
    assert orch.qr("moving", wait=15).payload
    phone = orch.sim_scan("moving", wait=15).session.phone
    assert phone
    wait_for(lambda: connected_on(store, "moving", {"host-b"}), timeout=30)
    fleet.remotes["host-c"].cli("apply")  # its supervisord and monitor (heartbeats)
    wait_for(lambda: {h.host for h in store.fleet_state().hosts if h.live} >= {"host-b", "host-c"})

    said: list[str] = []
    orch.progress = said.append
    before, began = utcnow(), time.monotonic()
    result = orch.move("moving", "host-c", timeout=MONITOR_EVERY - 30)
    took = time.monotonic() - began
    assert (result.from_host, result.to_host, result.status, result.phone) == (
        "host-b",
        "host-c",
        "connected",
        phone,
    )
    assert took < MONITOR_EVERY - 30, "done by the agents, not at a monitor's check"
    assert any("host-b stopped moving and handed it over to host-c" in s for s in said), said
    assert any("host-c took moving over on port" in s for s in said), said
    c = fleet.remotes["host-c"]
    assert result.port in range(c.base_port, c.base_port + 4)
    assert "waiting_scan" not in statuses_since(store, "moving", before), "no new QR"
    assert overlaps(store) == [], "never two connections to one device at once"

    # each step is in the audit trail under the operator's name, on the host that did it
    steps = {e.action: e.actor for e in store.list_events("moving", limit=50) if e.ts >= before}
    assert steps["hand_over"].endswith(" on host-b"), steps
    assert steps["move"].endswith(" on host-c"), steps
    # and host-b no longer has its program (removed through its agent, not its monitor)
    assert "wa-moving" not in fleet.remotes["host-b"].cli("ctl", "status", check=False).stdout
    assert orch.show("moving").pid is not None
    assert len(fleet.agents["host-b"]) == 1 and len(fleet.agents["host-c"]) == 1


def test_a_move_whose_source_cannot_be_reached_waits_for_its_monitor(
    fleet: LocalFleet, store: PostgresStore
) -> None:
    """host-b's link is down (its sshd, say) while its monitor still reaches the store:
    the move is asked for in the store, and host-b's monitor would hand it over at its
    next check; within a shorter timeout, it is withdrawn and nothing moved."""
    orch = fleet.orchestrator()
    orch.create(NewSession(name="staying", connector="sim"), host="host-b")
    orch.qr("staying", wait=15)
    orch.sim_scan("staying")
    wait_for(lambda: connected_on(store, "staying", {"host-b"}), timeout=30)
    fleet.remotes["host-c"].cli("apply")
    wait_for(lambda: {h.host for h in store.fleet_state().hosts if h.live} >= {"host-b", "host-c"})
    fleet.down.add("host-b")
    orch = fleet.orchestrator()  # a new control side: no link to host-b yet

    said: list[str] = []
    orch.progress = said.append
    with pytest.raises(Exception) as refused:
        orch.move("staying", "host-c", timeout=10)
    assert getattr(refused.value, "exit_code", None) == 69
    assert "did not hand staying over within 10 s" in str(refused.value)
    assert "nothing moved" in str(refused.value)
    assert any("host-b hands it over at its monitor's next check" in s for s in said), said
    kept = store.get_session("staying")
    assert kept.host == "host-b"
    lease = store.lease_info("staying").lease
    assert lease is not None and lease.move_to is None and lease.holder == "host-b"
    assert connected_on(store, "staying", {"host-b"}) is not None
