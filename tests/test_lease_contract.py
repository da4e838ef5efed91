"""The failover part of the store contract (migration 0009): leases and their fence on
every store (sqlite, postgres, supabase through the PostgREST-shaped server); host
heartbeats, claims and planned moves on the shared stores (postgres, supabase), whose
times are the database's clock."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from ecosystem.errors import (
    CannotMove,
    CapacityError,
    HostUnavailable,
    LeaseHeld,
    LeaseLost,
    NotThisHost,
    SessionNotFound,
)
from ecosystem.lease import AuthKind, Claimed, Fence
from ecosystem.models import utcnow
from ecosystem.states import DesiredState, Status
from ecosystem.store import Store
from ecosystem.webhook_events import new_event
from tests.conftest import wait_for
from tests.test_store_contract import (  # noqa: F401 - fixtures
    FACTORIES,
    StoreFactory,
    create,
    store,
    store_factory,
)

TTL = 30.0


def _runner_store(factory: StoreFactory, name: str, host: str) -> tuple[Store, Fence]:
    """A second connection, as a runner has: it takes the lease and writes under it."""
    mine = factory()
    lease = mine.acquire_lease(name, host, TTL)
    mine.set_fence(lease.fence)
    return mine, lease.fence


def test_acquire_renew_release_and_epochs(store: Store) -> None:  # noqa: F811
    create(store, "alpha", host="h1")
    first = store.acquire_lease("alpha", "h1", TTL)
    assert first.holder == "h1" and first.epoch == 1
    left = first.seconds_left()
    assert left is not None and TTL - 5 < left <= TTL
    renewed = store.renew_lease("alpha", first.fence, TTL)
    assert renewed.epoch == 1 and renewed.expires_at >= first.expires_at
    # a runner started again on the same host gets a new epoch: the old one is fenced
    second = store.acquire_lease("alpha", "h1", TTL)
    assert second.epoch == 2
    with pytest.raises(LeaseLost, match="alpha"):
        store.renew_lease("alpha", first.fence, TTL)
    assert store.release_lease("alpha", second.fence) is True
    assert store.release_lease("alpha", first.fence) is False
    info = store.lease_info("alpha")
    assert info.lease is not None and info.lease.expires_at <= info.now
    # released, not lost: the holder may renew it while nobody took it
    assert store.renew_lease("alpha", second.fence, TTL).epoch == 2


def test_a_session_of_another_host_cannot_be_leased_here(store: Store) -> None:  # noqa: F811
    create(store, "alpha", host="h1")
    with pytest.raises(NotThisHost, match="h1") as caught:
        store.acquire_lease("alpha", "h2", TTL)
    assert caught.value.host == "h1"
    assert store.lease_info("alpha").lease is None


def test_the_fence_refuses_every_write_of_an_older_epoch(
    store_factory: StoreFactory,  # noqa: F811
) -> None:
    """A runner whose lease moved on (here: a newer runner of the same session took it)
    can write nothing more: not its status, not its outbox, not its sim auth. Others
    (an operator's command, the monitor) still write freely."""
    store = store_factory()  # noqa: F811
    create(store, "alpha", host="h1", connector="sim")
    old, old_fence = _runner_store(store_factory, "alpha", "h1")
    old.set_runtime("alpha", {"status": Status.CONNECTED, "phone": "5511999"}, actor="runner")
    old.enqueue_webhook(new_event("alpha", "qr_code", {"qr": "x"}))
    old.save_sim_auth("alpha", "dev-1", "5511999")

    new, new_fence = _runner_store(store_factory, "alpha", "h1")
    assert new_fence.epoch == old_fence.epoch + 1
    with pytest.raises(LeaseLost, match="alpha"):
        old.set_runtime("alpha", {"status": Status.DISCONNECTED}, actor="runner")
    with pytest.raises(LeaseLost):
        old.enqueue_webhook(new_event("alpha", "qr_code", {"qr": "y"}))
    with pytest.raises(LeaseLost):
        old.save_sim_auth("alpha", "dev-2", "5511000")
    with pytest.raises(LeaseLost):
        old.delete_sim_auth("alpha")
    with pytest.raises(LeaseLost):
        old.due_webhooks("alpha", utcnow())
    got = store.get_session("alpha")
    assert got.status == Status.CONNECTED and got.phone == "5511999"
    assert store.webhook_counts("alpha")["pending"] == 1
    device = store.sim_auth("alpha")
    assert device is not None and device.device == "dev-1"

    new.set_runtime("alpha", {"status": Status.DISCONNECTED}, actor="runner")
    store.update_session(
        "alpha", {"description": "still mine"}, actor="operator", action="configure"
    )
    assert store.get_session("alpha").status == Status.DISCONNECTED
    old.set_fence(None)  # no fence: an operator's connection again
    old.set_runtime("alpha", {"last_error": "written unfenced"}, actor="operator")


def test_auth_and_failover_switch(store: Store) -> None:  # noqa: F811
    s = create(store, "alpha", connector="sim", auth=AuthKind.STORE)
    assert s.auth == AuthKind.STORE and s.failover and s.can_fail_over
    assert create(store, "beta").auth == AuthKind.LOCAL
    off = store.set_failover("alpha", auth=None, failover=False, actor="op")
    assert off.auth == AuthKind.STORE and not off.failover and not off.can_fail_over
    assert store.get_session("alpha").failover is False
    store.set_runtime("beta", {"phone": "5511999"}, actor="runner")
    with pytest.raises(CannotMove, match="logout"):
        store.set_failover("beta", auth=AuthKind.STORE, failover=None, actor="op")
    store.set_runtime("beta", {"phone": None}, actor="runner")
    assert store.set_failover("beta", auth=AuthKind.STORE, failover=None, actor="op").auth == (
        AuthKind.STORE
    )
    actions = [e.action for e in store.list_events("alpha")]
    assert "configure" in actions


def test_the_webhook_secret_moves_with_the_session(
    store_factory: StoreFactory,  # noqa: F811
) -> None:
    store = store_factory()  # noqa: F811
    create(store, "alpha", host="h1", connector="sim", auth=AuthKind.STORE)
    assert store.webhook_secret("alpha") is None
    old, _ = _runner_store(store_factory, "alpha", "h1")
    old.save_webhook_secret("alpha", "whsec_first")
    assert store.webhook_secret("alpha") == "whsec_first"
    _runner_store(store_factory, "alpha", "h1")  # a newer runner: the old one is fenced
    with pytest.raises(LeaseLost):
        old.save_webhook_secret("alpha", "whsec_stale")
    store.save_webhook_secret("alpha", "whsec_rotated")  # an operator's rotation
    assert store.webhook_secret("alpha") == "whsec_rotated"
    store.delete_session("alpha", actor="op")
    with pytest.raises(SessionNotFound):
        store.save_webhook_secret("alpha", "whsec_gone")


def test_sim_server_replaces_a_second_link(store: Store) -> None:  # noqa: F811
    create(store, "alpha", connector="sim")
    first, replaced = store.sim_open("dev-1", "alpha", "h1", 100, 1, 3.0)
    assert replaced == []
    assert store.sim_beat(first) == (True, None, None)
    second, replaced = store.sim_open("dev-1", "alpha", "h2", 200, 2, 3.0)
    assert [(r["id"], r["host"], r["live"]) for r in replaced] == [(first, "h1", True)]
    is_open, why, by = store.sim_beat(first)
    assert (is_open, why, by) == (False, "replaced", "h2")
    links = {link.id: link for link in store.sim_links("alpha")}
    assert links[first].overlap and links[first].replaced_by == second
    assert links[second].closed_at is None
    assert "sim_replaced" in [e.action for e in store.list_events("alpha")]
    # a link that stopped beating long ago was dropped by the server: no overlap
    third, replaced = store.sim_open("dev-1", "alpha", "h3", 300, 3, 0.0)
    assert [(r["id"], r["live"]) for r in replaced] == [(second, False)]
    assert not {link.id: link for link in store.sim_links("alpha")}[second].overlap
    store.sim_close(third, "closed")
    assert store.sim_beat(third)[:2] == (False, "closed")


# -- the fleet: heartbeats, claims, moves (shared stores only) --------------------------


@pytest.fixture(params=["postgres", "supabase"])
def fleet_factory(request: pytest.FixtureRequest) -> Iterator[StoreFactory]:
    made: list[Store] = []
    with ExitStack() as stack:
        base = FACTORIES[request.param](stack, request)

        def make() -> Store:
            store = base()
            store.migrate()
            made.append(store)
            return store

        yield make
        for s in made:
            s.close()


def _beat(db: Store, host: str, ttl: float = TTL, **info: Any) -> None:
    db.host_beat(host, ttl, {"base_port": 4001, "max_sessions": 5, **info})


def _claim(db: Store, name: str, host: str, slots: int = 2) -> Claimed | None:
    return db.claim_session(
        name,
        host=host,
        ports=range(3001, 3001 + slots),
        exclude_ports=[],
        max_sessions=slots,
        ttl=TTL,
        actor=f"health@{host}",
    )


def _running_on(factory: StoreFactory, name: str, host: str, ttl: float) -> Fence:
    runner = factory()
    fence = runner.acquire_lease(name, host, ttl).fence
    runner.close()
    return fence


def test_heartbeats_and_who_is_silent(fleet_factory: StoreFactory) -> None:
    store = fleet_factory()  # noqa: F811
    create(store, "alpha", host="a", connector="sim", auth=AuthKind.STORE)
    create(store, "local", host="a", connector="sim")
    _beat(store, "a", ttl=3)
    _beat(store, "b", accepts_failover=True)
    _running_on(fleet_factory, "alpha", "a", 3)
    _running_on(fleet_factory, "local", "a", 3)
    state = store.fleet_state()
    hosts = {h.host: h for h in state.hosts}
    assert hosts["a"].live and hosts["a"].sessions == 2 and hosts["b"].sessions == 0
    assert hosts["b"].accepts_failover and hosts["b"].free_slots == 5
    assert state.orphans == []
    # a goes silent: its heartbeat and its leases run out (the database's clock)
    state = wait_for(lambda: len((st := store.fleet_state()).orphans) == 2 and st, timeout=20)
    orphans = {o.session_name: o for o in state.orphans}
    assert set(orphans) == {"alpha", "local"}
    assert orphans["alpha"].can_fail_over and not orphans["local"].can_fail_over
    assert not {h.host: h for h in state.hosts}["a"].live


def test_a_claim_moves_the_session_and_fences_the_old_holder(
    fleet_factory: StoreFactory,
) -> None:
    store = fleet_factory()  # noqa: F811
    create(store, "alpha", host="a", connector="sim", auth=AuthKind.STORE)
    create(store, "local", host="a", connector="sim")
    create(store, "already", host="b")  # b's first port is taken
    _beat(store, "a", ttl=0.3)
    old, _ = _runner_store(fleet_factory, "alpha", "a")
    store.acquire_lease("local", "a", 0.3)

    def claim(name: str) -> Any:
        return store.claim_session(
            name,
            host="b",
            ports=range(3001, 3004),
            exclude_ports=[3002],
            max_sessions=3,
            ttl=TTL,
            actor="health@b",
        )

    # the lease is held and a beats: not claimable
    assert claim("alpha") is None
    old.renew_lease("alpha", old.fence or Fence("", 0), 0.3)
    wait_for(
        lambda: {o.session_name for o in store.fleet_state().orphans} == {"alpha", "local"},
        timeout=10,
    )
    assert claim("local") is None  # local auth never moves
    got = claim("alpha")
    assert got is not None and got.kind == "failover"
    assert (got.from_, got.to, got.to_port) == ("a", "b", 3003)
    assert "failover of alpha from a to b: a silent since" in got.message
    moved = store.get_session("alpha")
    assert (moved.host, moved.port) == ("b", 3003)
    assert claim("alpha") is None  # already b's
    with pytest.raises(LeaseLost):
        old.set_runtime("alpha", {"status": Status.CONNECTED}, actor="runner")
    with pytest.raises(LeaseLost):
        old.renew_lease("alpha", old.fence or Fence("", 0), TTL)
    event = store.list_events("alpha", limit=5)[0]
    assert event.action == "failover" and event.detail["from"] == "a"
    assert store.get_session("local").host == "a"


def test_a_claim_beyond_capacity_changes_nothing(fleet_factory: StoreFactory) -> None:
    store = fleet_factory()  # noqa: F811
    create(store, "alpha", host="a", connector="sim", auth=AuthKind.STORE)
    create(store, "full", host="b")
    _beat(store, "a", ttl=0.2)
    _running_on(fleet_factory, "alpha", "a", 0.2)
    wait_for(lambda: store.fleet_state().orphans, timeout=10)
    with pytest.raises(CapacityError):
        _claim(store, "alpha", "b", slots=1)
    assert store.get_session("alpha").host == "a"
    info = store.lease_info("alpha")
    assert info.lease is not None and info.lease.holder == "a"


def _race(factory: StoreFactory, host: str, start: Any, out: Any) -> None:
    mine = factory()
    start.wait(60)
    try:
        got = _claim(mine, "alpha", host, slots=10)
        out.put((host, got.to if got else None))
    except Exception as exc:  # reported to the parent, which fails the test
        out.put((host, repr(exc)))


def test_hosts_racing_for_one_expired_lease_one_wins(fleet_factory: StoreFactory) -> None:
    """Four processes (four hosts' monitors) claim the same session at the same moment:
    exactly one gets it, and the session ends up on that host."""
    store = fleet_factory()  # noqa: F811
    create(store, "alpha", host="a", connector="sim", auth=AuthKind.STORE)
    _beat(store, "a", ttl=0.2)
    _running_on(fleet_factory, "alpha", "a", 0.2)
    wait_for(lambda: store.fleet_state().orphans, timeout=10)
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    hosts = ["b", "c", "d", "e"]
    procs = [ctx.Process(target=_race, args=(fleet_factory, h, start, out)) for h in hosts]
    for p in procs:
        p.start()
    start.set()
    results = dict(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=30)
    winners = [h for h, to in results.items() if to is not None]
    assert len(winners) == 1, results
    assert results[winners[0]] == winners[0]
    assert store.get_session("alpha").host == winners[0]
    assert [e.action for e in store.list_events("alpha")].count("failover") == 1


def test_a_planned_move_hand_over_and_claim(fleet_factory: StoreFactory) -> None:
    store = fleet_factory()  # noqa: F811
    create(store, "alpha", host="a", connector="sim", auth=AuthKind.STORE)
    create(store, "local", host="a", connector="sim")
    _beat(store, "a")
    _beat(store, "b")
    runner, _ = _runner_store(fleet_factory, "alpha", "a")
    with pytest.raises(HostUnavailable, match="ghost"):
        store.request_move("alpha", "ghost", "op")
    with pytest.raises(CannotMove, match="auth local"):
        store.request_move("local", "b", "op")
    with pytest.raises(CannotMove, match="already runs"):
        store.request_move("alpha", "a", "op")
    assert store.request_move("alpha", "b", "op")["state"] == "requested"
    with pytest.raises(CannotMove, match="already being moved"):
        store.request_move("alpha", "b", "op")
    # b cannot take it before a hands it over; a runner of a cannot start meanwhile
    assert _claim(store, "alpha", "b") is None
    with pytest.raises(LeaseHeld, match="moved to b"):
        store.acquire_lease("alpha", "a", TTL)
    assert store.cancel_move("alpha", "op") is True
    assert store.cancel_move("alpha", "op") is False
    store.request_move("alpha", "b", "op")
    assert store.hand_over("alpha", "b", "health@b") is None  # not b's to hand over
    handed = store.hand_over("alpha", "a", "health@a")
    assert handed == {"session": "alpha", "from": "a", "to": "b"}
    assert [o.session_name for o in store.fleet_state().offers] == ["alpha"]
    with pytest.raises(LeaseLost):
        runner.set_runtime("alpha", {"status": Status.CONNECTED}, actor="runner")
    assert _claim(store, "alpha", "c") is None  # offered to b only
    got = _claim(store, "alpha", "b")
    assert got is not None and got.kind == "move" and got.to == "b"
    assert store.get_session("alpha").host == "b"
    assert store.fleet_state().offers == []
    actions = [e.action for e in store.list_events("alpha")]
    assert actions[:3] == ["move", "hand_over", "move_requested"]


def test_a_stopped_session_is_offered_at_once(fleet_factory: StoreFactory) -> None:
    store = fleet_factory()  # noqa: F811
    create(
        store,
        "alpha",
        host="a",
        connector="sim",
        auth=AuthKind.STORE,
        desired_state=DesiredState.STOPPED,
    )
    _beat(store, "a")
    _beat(store, "b", max_sessions=1)
    assert store.request_move("alpha", "b", "op")["state"] == "offered"
    create(store, "beta", host="a", connector="sim", auth=AuthKind.STORE)
    create(store, "filler", host="b")
    with pytest.raises(CapacityError):
        store.request_move("beta", "b", "op")
