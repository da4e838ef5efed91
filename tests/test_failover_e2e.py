"""Failover for real: several zapvisor hosts on this machine (each its own state dir,
host id, port range, supervisord and health monitor) sharing one real PostgreSQL, with
real sim runners. WhatsApp's servers cannot be reached from here: the sim connector and
its simulated server (one connection per device, in the store) stand for them, which
is what lets these tests see every connection each device had."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from ecosystem.models import utcnow
from ecosystem.store.postgres import PostgresStore
from tests.conftest import Env, wait_for
from tests.failover_hosts import (
    Host,
    Proxy,
    connected_on,
    dsn_through,
    gone_or_zombie,
    host_vars,
    overlaps,
    statuses_since,
    target_of,
)

pytestmark = pytest.mark.e2e

FAILOVER_WITHIN = 60.0
"""Lease (6 s) + the claimer's next check + a runner's start, with room for a machine
shared by many test workers."""


@pytest.fixture
def store(pg_store: PostgresStore) -> PostgresStore:
    return pg_store


@pytest.fixture
def hosts(pg_dsn: str, make_env: Callable[..., Env]) -> Iterator[dict[str, Host]]:
    made = {h: Host(h, make_env(max_sessions=4, **host_vars(pg_dsn, h))) for h in "abc"}
    yield made
    for host in made.values():
        host.thaw()  # a frozen host must answer its teardown


def _paired(env: Env, name: str, *extra: str) -> str:
    env.cli("create", name, "--connector", "sim", *extra)
    env.cli("qr", name, "--wait", "30")
    return str(env.json("sim-scan", name)["phone"])


def _up(host: Host) -> None:
    host.env.cli("apply")  # starts its supervisord and health monitor


def test_kill_9_a_host_its_sessions_come_back_elsewhere(
    hosts: dict[str, Host], store: PostgresStore
) -> None:
    a, b, c = hosts["a"], hosts["b"], hosts["c"]
    phone = _paired(a.env, "moving")
    local = _paired(a.env, "pinned", "--auth", "local")
    assert a.env.json("show", "moving")["auth"] == "store"
    shown = a.env.cli("show", "pinned").stdout
    assert "cannot fail over" in shown and "tokens/pinned/" in shown
    _up(b)
    _up(c)
    wait_for(lambda: {h.host for h in store.fleet_state().hosts if h.live} >= set("abc"))

    killed_at = utcnow()
    a.kill()
    moved = wait_for(lambda: connected_on(store, "moving", {"b", "c"}), timeout=FAILOVER_WITHIN)
    assert moved.phone == phone, "same phone"
    assert "waiting_scan" not in statuses_since(store, "moving", killed_at), "no new QR"
    new_host = hosts[moved.host]
    assert new_host.env.supervisord_pid() is not None
    assert moved.port in range(new_host.env.base_port, new_host.env.base_port + 4)
    secret = "secrets/moving.webhook-secret"
    assert (new_host.env.home / secret).read_text() == (a.env.home / secret).read_text(), (
        "webhooks signed with the same secret on the new host"
    )
    failover = next(e for e in store.list_events("moving") if e.action == "failover")
    assert failover.detail["from"] == "a" and failover.detail["to"] == moved.host
    assert "a silent since" in failover.detail["message"]

    # the local-auth session stays on a, reported rather than moved
    assert store.get_session("pinned").host == "a"
    alerts = wait_for(
        lambda: [x for x in b.env.json("alerts") if x["key"] == "host_silent:a"], timeout=30
    )
    assert "pinned" in alerts[0]["message"] and "moving" not in alerts[0]["message"]
    assert overlaps(store) == [], "never two connections to one device at once"
    links = store.sim_links("moving")
    assert [link.close_reason for link in links if link.host == "a"] == ["expired"]
    history = b.env.json("moves", "--host", "a")
    assert [(m["session"], m["kind"], m["from"]) for m in history][:1] == [
        ("moving", "failover", "a")
    ]

    # a comes back: its supervisord never starts the session that moved away
    _up(a)
    wait_for(lambda: connected_on(store, "pinned", {"a"}), timeout=FAILOVER_WITHIN)
    assert store.get_session("pinned").phone == local
    programs = {p["name"] for p in a.env.json("list")}
    assert programs == {"pinned"}
    assert "wa-moving" not in a.env.cli("ctl", "status").stdout
    assert connected_on(store, "moving", {moved.host}) is not None
    assert overlaps(store) == []


def _program_gone(host: Host, name: str) -> bool:
    return f"wa-{name}" not in host.env.cli("ctl", "status", check=False).stdout


def test_a_frozen_host_wakes_up_and_stops_what_moved_away(
    hosts: dict[str, Host], store: PostgresStore
) -> None:
    a, b = hosts["a"], hosts["b"]
    phone = _paired(a.env, "moving")
    _up(b)
    wait_for(lambda: {h.host for h in store.fleet_state().hosts if h.live} >= {"a", "b"})
    old_pid = a.env.json("show", "moving")["pid"]
    frozen_at = utcnow()
    a.freeze()
    moved = wait_for(lambda: connected_on(store, "moving", {"b"}), timeout=FAILOVER_WITHIN)
    assert moved.phone == phone
    assert "waiting_scan" not in statuses_since(store, "moving", frozen_at)

    a.thaw()
    # its runner finds the lease lost and stops without reconnecting; its program goes
    wait_for(lambda: gone_or_zombie(old_pid), timeout=30)
    wait_for(lambda: _program_gone(a, "moving"), timeout=30)
    actions = {(e.action, e.actor) for e in store.list_events("moving", limit=200)}
    assert ("lease_lost", "runner") in actions and ("moved_away", "health@a") in actions
    a_links = [link for link in store.sim_links("moving") if link.host == "a"]
    assert len(a_links) == 1, "a never connected the device again"
    assert overlaps(store) == [], "never two connections to one device at once"
    assert connected_on(store, "moving", {"b"}) is not None
    history = a.env.json("moves", "--host", "a")
    assert {m["kind"] for m in history} >= {"failover", "moved_away", "lease_lost"}


def test_a_host_cut_off_from_the_store_lets_go_before_its_lease_can_be_taken(
    pg_dsn: str, make_env: Callable[..., Env], store: PostgresStore
) -> None:
    """Its database link goes through a proxy the test cuts (a black hole); its runners
    still reach the simulated WhatsApp server (ZAPVISOR_SIM_SERVER_URL, direct)."""
    proxy = Proxy(target_of(pg_dsn))
    a = Host(
        "a",
        make_env(
            max_sessions=4,
            **host_vars(dsn_through(pg_dsn, proxy), "a", ZAPVISOR_SIM_SERVER_URL=pg_dsn),
        ),
    )
    b = Host("b", make_env(max_sessions=4, **host_vars(pg_dsn, "b")))
    try:
        phone = _paired(a.env, "moving")
        _up(b)
        wait_for(lambda: {h.host for h in store.fleet_state().hosts if h.live} >= {"a", "b"})
        proxy.cut.set()
        held = store.lease_info("moving").lease
        assert held is not None and held.holder == "a"
        moved = wait_for(lambda: connected_on(store, "moving", {"b"}), timeout=FAILOVER_WITHIN)
        assert moved.phone == phone
        lease_end = max(
            e.ts for e in store.list_events("moving", limit=50) if e.action == "failover"
        )
        (a_link,) = [link for link in store.sim_links("moving") if link.host == "a"]
        assert a_link.close_reason == "lease", "a let go because its lease was not renewed"
        assert a_link.closed_at is not None and a_link.closed_at < lease_end
        assert overlaps(store) == []
    finally:
        proxy.cut.clear()  # its teardown needs the store
        a.thaw()


def test_a_planned_move_and_its_refusals(hosts: dict[str, Host], store: PostgresStore) -> None:
    a, b = hosts["a"], hosts["b"]
    phone = _paired(a.env, "moving")
    _paired(a.env, "pinned", "--auth", "local")
    _up(b)
    wait_for(lambda: {h.host for h in store.fleet_state().hosts if h.live} >= {"a", "b"})

    ghost = a.env.cli("move", "moving", "--to", "ghost", check=False)
    assert ghost.returncode == 69 and "ghost" in ghost.stderr
    local = a.env.cli("move", "pinned", "--to", "b", check=False)
    assert local.returncode == 65 and "auth local" in local.stderr
    for n in range(4):
        b.env.cli("create", f"filler{n}", "--connector", "sim", "--stopped")
    full = a.env.cli("move", "moving", "--to", "b", check=False)
    assert full.returncode == 75 and "full" in full.stderr
    assert store.get_session("moving").host == "a", "a refused move changes nothing"
    b.env.cli("delete", "filler0", "--yes")

    before = utcnow()
    done = a.env.json("move", "moving", "--to", "b")
    assert (done["from"], done["to"], done["status"], done["phone"]) == (
        "a",
        "b",
        "connected",
        phone,
    )
    assert "waiting_scan" not in statuses_since(store, "moving", before)
    assert overlaps(store) == []
    a_link = next(link for link in store.sim_links("moving") if link.host == "a")
    assert a_link.close_reason == "closed", "a stopped its runner before the hand-over"
    actions = [e.action for e in store.list_events("moving", limit=50)]
    assert actions.index("move") < actions.index("hand_over") < actions.index("move_requested")
    wait_for(lambda: _program_gone(a, "moving"), timeout=30)


def test_no_room_anywhere_no_placement_an_alert_nothing_lost(
    pg_dsn: str, make_env: Callable[..., Env], store: PostgresStore
) -> None:
    a = Host("a", make_env(max_sessions=4, **host_vars(pg_dsn, "a")))
    b = Host("b", make_env(max_sessions=1, **host_vars(pg_dsn, "b")))
    phone = _paired(a.env, "moving")
    b.env.cli("create", "filler", "--connector", "sim", "--stopped")
    wait_for(lambda: {h.host for h in store.fleet_state().hosts if h.live} >= {"a", "b"})
    a.kill()
    raised = wait_for(
        lambda: [x for x in b.env.json("alerts") if x["key"] == "failover_unplaced:moving"],
        timeout=FAILOVER_WITHIN,
    )
    assert "b is full (1 of 1)" in raised[0]["message"]
    kept = store.get_session("moving")
    assert (kept.host, kept.phone, str(kept.desired_state)) == ("a", phone, "running")

    b.env.cli("delete", "filler", "--yes")  # room at last
    moved = wait_for(lambda: connected_on(store, "moving", {"b"}), timeout=FAILOVER_WITHIN)
    assert moved.phone == phone
    wait_for(
        lambda: not [x for x in b.env.json("alerts") if x["key"] == "failover_unplaced:moving"],
        timeout=30,
    )
    assert overlaps(store) == []


def test_a_planned_move_to_a_host_that_filled_up_meanwhile_loses_nothing_and_says_why(
    pg_dsn: str, make_env: Callable[..., Env], store: PostgresStore
) -> None:
    """b has room when the move is asked for and is full by the time it could take the
    session (a session created there in between; b's monitor is frozen meanwhile, so the
    race goes that way every time, and b's 30 s lease keeps it alive through it): nothing
    runs it on b, an alert says why, the session keeps its phone and its wish to run,
    and b takes it over once it has room."""
    a = Host("a", make_env(max_sessions=4, **host_vars(pg_dsn, "a")))
    b_vars = host_vars(pg_dsn, "b", ZAPVISOR_LEASE_SECONDS="30")
    b = Host("b", make_env(max_sessions=1, **b_vars))
    try:
        phone = _paired(a.env, "moving")
        _up(b)
        wait_for(lambda: {h.host for h in store.fleet_state().hosts if h.live} >= {"a", "b"})
        b.frozen = [p.pid for p in b.processes() if p.pid != b.env.supervisord_pid()]
        assert b.frozen, "b's monitor"
        for pid in b.frozen:
            os.kill(pid, signal.SIGSTOP)
        with ThreadPoolExecutor(1) as pool:
            asked = pool.submit(
                a.env.cli, "move", "moving", "--to", "b", "--timeout", "5", check=False
            )
            wait_for(lambda: _offered_to(store, "moving") == "b", timeout=30)
            b.env.cli("create", "filler", "--connector", "sim", "--stopped")
            b.thaw()
            refused = asked.result(timeout=60)
        assert refused.returncode != 0 and "offered to b" in refused.stderr, refused.stderr
        raised = wait_for(
            lambda: [x for x in a.env.json("alerts") if x["key"] == "failover_unplaced:moving"],
            timeout=FAILOVER_WITHIN,
        )
        assert (
            "move of moving from a to b cannot be placed: b is full (1 of 1)"
            in (raised[0]["message"])
        )
        kept = store.get_session("moving")
        assert (kept.host, kept.phone, str(kept.desired_state)) == ("a", phone, "running")
        assert _offered_to(store, "moving") == "b"

        before = utcnow()
        b.env.cli("delete", "filler", "--yes")  # room at last
        moved = wait_for(lambda: connected_on(store, "moving", {"b"}), timeout=FAILOVER_WITHIN)
        assert moved.phone == phone, "same phone"
        assert "waiting_scan" not in statuses_since(store, "moving", before), "no new QR"
        wait_for(
            lambda: not [x for x in a.env.json("alerts") if x["key"] == "failover_unplaced:moving"],
            timeout=30,
        )
        assert overlaps(store) == []
    finally:
        b.thaw()


def _offered_to(store: PostgresStore, name: str) -> str | None:
    lease = store.lease_info(name).lease
    return lease.offered_to if lease is not None else None
