"""Routing under the door, for real but without SSH: two hosts on this machine (each its
own state dir, port block, host id and supervisord) share one real PostgreSQL database;
the control side runs on host-a and reaches host-b through the real
`zapvisor agent --stdio`, started as a subprocess whose pipes stand in for the SSH
channel. Every action on host-b's sessions runs there, by the same code."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from ecosystem.errors import HostUnreachable, InvalidValue, SessionExists
from ecosystem.liveview import Poller
from ecosystem.models import NewSession
from ecosystem.orchestrator import Orchestrator
from ecosystem.states import DesiredState
from tests.conftest import Env, wait_for
from tests.fleet_local import LocalFleet, make_fleet
from tests.test_e2e_operator import health

pytestmark = pytest.mark.e2e


@pytest.fixture
def fleet(make_env: Callable[..., Env], pg_dsn: str) -> Iterator[LocalFleet]:
    made = make_fleet(make_env, pg_dsn, remotes=1)
    yield made
    made.close()


def test_every_action_on_a_remote_session_runs_on_its_host(fleet: LocalFleet) -> None:
    orch = fleet.orchestrator()
    b = fleet.remotes["host-b"]
    view = orch.create(NewSession(name="remote-1", connector="sim"), host="host-b")
    assert view.session.host == "host-b" and view.session.port == b.base_port
    assert view.pid and health(b.base_port)["session"] == "remote-1"  # type: ignore[index]
    assert b.supervisord_pid() and fleet.local.supervisord_pid() is None

    # a name is unique across the fleet
    with pytest.raises(SessionExists):
        orch.create(NewSession(name="remote-1", connector="sim"), host="host-a")

    # lifecycle by name: the new pid is host-b's
    after = orch.restart("remote-1")
    assert after.pid not in (None, view.pid)
    assert orch.show("remote-1").pid == after.pid

    # what lives in host-b's state dir comes from there
    token = orch.api_token("remote-1")
    assert (b.home / "secrets" / "remote-1.token").read_text().strip() == token
    # where the bot's key comes from is looked up there too (what the config form shows)
    assert orch.ai_key_sources("remote-1") == {"openai": None, "gemini": None}
    orch.set_ai_key("remote-1", "gemini", "AIza-remote-0123456789")
    key = "secrets/remote-1.gemini-key"
    assert orch.ai_key_sources("remote-1") == {"openai": None, "gemini": key}
    assert (b.home / key).is_file() and not (fleet.local.home / key).exists()

    # an error raised there is raised here, same class and exit code
    with pytest.raises(InvalidValue) as bad:
        orch.pair_phone("remote-1", "12ab")
    assert bad.value.exit_code == 65 and "'ab'" in str(bad.value)
    assert orch.links is not None and orch.links.reach("host-b").reachable is True

    # the QR, then its log followed while the simulated phone scans it
    code = orch.qr("remote-1", wait=15)
    assert code.payload and code.payload.startswith("2@")
    follow = orch.follow_logs("remote-1", backlog=20)
    first = next(follow)
    assert any('"session": "remote-1"' in line.text for line in first)
    orch.sim_scan("remote-1")
    deadline = time.monotonic() + 15
    seen: list[str] = []
    for batch in follow:
        seen += [line.text for line in batch]
        if any('"paired"' in t for t in seen) or time.monotonic() > deadline:
            break
    follow.close()
    assert any('"paired"' in t for t in seen), seen[-5:]

    # the audit trail names the operator, the control machine and the host
    actors = {e.actor for e in orch.events("remote-1") if e.action == "restart"}
    assert actors and all(a.endswith(" on host-b") and "@" in a for a in actors)

    # one list, every host's sessions, each with its host
    orch.create(NewSession(name="local-1", connector="sim"), host="host-a")
    # (create returns once /health answers; supervisord says RUNNING after startsecs)
    want = {"local-1": ("host-a", "RUNNING"), "remote-1": ("host-b", "RUNNING")}
    listing: dict[str, tuple[str | None, str | None]] = {}

    def listed() -> bool:
        listing.update({v.name: (v.session.host, v.process_state) for v in orch.list_sessions()})
        return listing == want

    assert wait_for(listed, 20), listing
    assert [v.name for v in orch.list_sessions(host="host-b")] == ["remote-1"]

    # doctor checks the other hosts too
    checks = {c.name: c for c in orch.doctor()}
    assert checks["host host-b"].level == "ok", checks["host host-b"]
    assert "zapvisor" in checks["host host-b"].detail

    # one agent served all of it
    assert len(fleet.agents["host-b"]) == 1

    orch.delete("remote-1")
    assert wait_for(lambda: health(b.base_port) is None, 10)
    assert [v.name for v in orch.list_sessions()] == ["local-1"]


def test_create_without_a_host_picks_the_one_with_most_room(fleet: LocalFleet) -> None:
    # host-a: 2 of 3 slots taken after the first two creates, so its room (1/3) is far
    # below host-b's, which is then bound by the machine's free memory: both hosts are
    # this machine, and with a roomier host-a the choice would hang on which of the
    # two sampled the load average lower
    orch = fleet.orchestrator(max_sessions=3)
    orch.create(
        NewSession(name="a-1", connector="sim", desired_state=DesiredState.STOPPED), host="host-a"
    )
    orch.create(
        NewSession(name="a-2", connector="sim", desired_state=DesiredState.STOPPED), host="host-a"
    )
    placed = orch.create(
        NewSession(name="anywhere", connector="sim", desired_state=DesiredState.STOPPED)
    )
    assert placed.session.host == "host-b"

    # a host that cannot be reached is not a candidate, and is named when it was asked for
    fleet.down.add("host-b")
    orch2 = fleet.orchestrator(max_sessions=3)
    placed = orch2.create(
        NewSession(name="anywhere-2", connector="sim", desired_state=DesiredState.STOPPED)
    )
    assert placed.session.host == "host-a"
    with pytest.raises(HostUnreachable, match="host-b"):
        orch2.create(NewSession(name="pinned", connector="sim"), host="host-b")
    assert "pinned" not in {v.name for v in orch2.list_sessions(host="host-a")}


def test_a_silent_host_turns_grey_within_10_s_and_comes_back(fleet: LocalFleet) -> None:
    orch = fleet.orchestrator()
    orch.create(NewSession(name="here", connector="sim"), host="host-a")
    orch.create(NewSession(name="there", connector="sim"), host="host-b")
    poller = Poller(orch)

    def there_running() -> bool:
        snap = poller.tick()
        there = snap.view("there")
        return (
            snap.hosts["host-b"].reachable
            and there is not None
            and there.process_state == "RUNNING"
        )

    # create returns once /health answers; supervisord says RUNNING after startsecs
    wait_for(there_running, 20)
    agent = fleet.agents["host-b"][-1]

    # each tick asks host-b once, on the link it has: no process started per tick
    assert orch.links is not None
    asked = orch.links.calls[("host-b", "host_report")]
    for _ in range(5):
        poller.tick()
    assert orch.links.calls[("host-b", "host_report")] - asked <= 5
    assert fleet.agents["host-b"] == [agent]

    # the host stops answering mid-refresh (its agent frozen, no new link possible)
    fleet.down.add("host-b")
    os.kill(agent, signal.SIGSTOP)
    frozen_at = time.monotonic()
    ticks = []
    while True:
        started = time.monotonic()
        snap = poller.tick()
        ticks.append(time.monotonic() - started)
        if not snap.hosts["host-b"].reachable:
            break
        assert time.monotonic() - frozen_at < 10, "host-b still shown as answering"
        time.sleep(0.2)
    greyed = time.monotonic() - frozen_at
    assert greyed < 10
    # the local rows kept refreshing at their pace meanwhile
    assert max(ticks) < 2.0, ticks
    there = snap.view("there")
    assert there is not None and there.process_state == "RUNNING", "last known state kept"
    assert there.unreachable and there.unreachable.startswith("host unreachable since ")
    assert snap.view("here").unreachable is None  # type: ignore[union-attr]

    # back: a new link, the rows answer again
    fleet.down.discard("host-b")
    os.kill(agent, signal.SIGCONT)
    wait_for(lambda: poller.tick().hosts["host-b"].reachable, 20)
    snap = poller.tick()
    assert snap.view("there").unreachable is None  # type: ignore[union-attr]

    # the host leaves the fleet while the view is open: it goes from the view, quietly
    orch.delete("there")
    del fleet.remotes["host-b"]
    snap = poller.tick()
    assert set(snap.hosts) == set() and [v.name for v in snap.views] == ["here"]


def test_two_control_machines_at_once_and_a_host_whose_supervisord_is_down(
    fleet: LocalFleet,
) -> None:
    """Two control sides (each its own links and agent) create on host-b at the same
    moment: the store gives distinct ports. Then host-b's supervisord is shut down: the
    next listing brings it up there, as a local command does here."""
    one, two = fleet.orchestrator(), fleet.orchestrator()
    made: dict[str, int] = {}
    failed: list[BaseException] = []

    def create(orch: Orchestrator, name: str) -> None:
        try:
            new = NewSession(name=name, connector="sim")
            made[name] = orch.create(new, host="host-b").session.port
        except BaseException as exc:  # reported below
            failed.append(exc)

    threads = [
        threading.Thread(target=create, args=(orch, name))
        for orch, name in ((one, "from-one"), (two, "from-two"))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failed, failed
    assert sorted(made.values()) == [fleet.remotes["host-b"].base_port + i for i in (0, 1)]
    assert len(fleet.agents["host-b"]) == 2  # one link per control side

    b = fleet.remotes["host-b"]
    pid = b.supervisord_pid()
    b.cli("shutdown")
    assert wait_for(lambda: not _alive(pid), 30)
    want = {"from-one": "RUNNING", "from-two": "RUNNING"}
    listing: dict[str, str | None] = {}

    def listed() -> bool:  # RUNNING once past startsecs
        listing.update({v.name: v.process_state for v in one.list_sessions(host="host-b")})
        return listing == want

    assert wait_for(listed, 20), listing
    assert b.supervisord_pid() not in (None, pid)


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
