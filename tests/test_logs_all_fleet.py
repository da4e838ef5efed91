"""`logs --all` over two hosts, for real but without SSH (tests/fleet_local.py): each
host reads its own files through its agent; the control side merges the streams."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from ecosystem.logstream import LogEntry
from ecosystem.models import NewSession
from tests.conftest import Env, wait_for
from tests.fleet_local import LocalFleet, make_fleet

pytestmark = pytest.mark.e2e


@pytest.fixture
def fleet(make_env: Callable[..., Env], pg_dsn: str) -> Iterator[LocalFleet]:
    made = make_fleet(make_env, pg_dsn, remotes=1)
    yield made
    made.close()


def test_all_logs_merge_both_hosts_and_one_host_alone(fleet: LocalFleet) -> None:
    orch = fleet.orchestrator()
    orch.create(NewSession(name="aqui", connector="sim"), host="host-a")
    orch.create(NewSession(name="ali", connector="sim"), host="host-b")

    tail = orch.all_logs(lines=5)
    assert {(e.host, e.session) for e in tail} == {("host-a", "aqui"), ("host-b", "ali")}
    assert [e.ts for e in tail] == sorted(e.ts for e in tail)
    only_b = orch.all_logs("host-b", lines=5)
    assert only_b and {e.session for e in only_b} == {"ali"}

    stream = orch.follow_all_logs(backlog=0, grep="paired")
    seen: list[LogEntry] = []
    try:
        next(stream)
        orch.sim_scan("ali")
        orch.sim_scan("aqui")

        def both() -> bool:
            seen.extend(next(stream))
            return {e.session for e in seen} == {"ali", "aqui"}

        wait_for(both, timeout=30, interval=0)
    finally:
        stream.close()  # type: ignore[attr-defined]
    assert all("paired" in e.text for e in seen)
    assert {e.host for e in seen} == {"host-a", "host-b"}
