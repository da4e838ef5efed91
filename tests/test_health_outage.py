"""The health monitor through a store outage, for real: a PostgreSQL of the test's own,
stopped and started again under a real supervisord running real sim runners."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ecosystem.health import status as monitor_status
from ecosystem.health.model import MONITOR_ACTOR
from ecosystem.models import Event, utcnow
from ecosystem.names import program_name
from ecosystem.paths import StatePaths
from ecosystem.store.postgres import PostgresStore
from ecosystem.supctl import daemon
from ecosystem.supctl.render import MONITOR_PROGRAM
from ecosystem.supctl.rpc import ProcessInfo
from tests.conftest import Env, free_port_block, teardown_env, wait_for
from tests.health_helpers import FAST
from tests.pgserver import PgServer, find_bin

pytestmark = pytest.mark.e2e


@pytest.fixture
def own_server() -> Iterator[PgServer]:
    """A PostgreSQL of this test's own, since the test stops and starts it."""
    if find_bin() is None:
        pytest.skip("PostgreSQL is not installed here (./scripts/test installs it with apt)")
    server = PgServer(free_port_block(1))
    try:
        server.start()
        yield server
    finally:
        server.destroy()


def monitor_events(store: PostgresStore) -> list[Event]:
    return [e for e in store.list_events("alpha") if e.actor == MONITOR_ACTOR]


def test_monitor_keeps_supervising_while_the_store_is_down(
    own_server: PgServer, make_env: Callable[..., Env]
) -> None:
    env = make_env(max_sessions=1, **FAST, ZAPVISOR_DATABASE_URL=own_server.dsn())
    paths = StatePaths(env.home)
    store = PostgresStore(own_server.dsn())
    try:
        env.cli("db", "migrate")
        env.cli("create", "alpha", "--connector", "sim")
        sup = daemon.client(paths)

        def runner() -> ProcessInfo | None:
            return sup.process_info(program_name("alpha"))

        def monitor() -> ProcessInfo | None:
            return sup.process_info(MONITOR_PROGRAM)

        def status() -> dict[str, Any]:
            return monitor_status.read(paths) or {}

        first = wait_for(lambda: (p := runner()) and p.state == "RUNNING" and p.pid)
        assert isinstance(first, int), "the predicate's truthy value is the runner's pid"
        checks = status().get("checks", 0)
        wait_for(lambda: status().get("checks", 0) >= checks + 2, timeout=30)

        # A crash during the outage: restarted from the sessions the monitor last read.
        down_at = utcnow()
        own_server.stop()
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: (p := runner()) and p.state == "RUNNING" and p.pid != first, timeout=30)
        assert wait_for(lambda: status().get("store_down_since"), timeout=30)
        # ...and it is recorded once the store answers again: its health record, and
        # its audit events in order, at the time they happened.
        up_at = utcnow()
        own_server.start()
        h = wait_for(lambda: (x := store.get_health("alpha")).restarts == 1 and x, timeout=60)
        assert h.exits == 1 and h.last_exit_status == -1 and h.parked_at is None
        mine = wait_for(lambda: len(x := monitor_events(store)) >= 2 and x, timeout=30)
        assert [e.action for e in mine] == ["auto_restart", "crash"]  # newest first
        assert mine[1].detail["exit_status"] == -1 and mine[0].detail["restarts"] == 1
        assert all(down_at < e.ts < up_at for e in mine), (down_at, up_at, mine)
        assert mine[1].ts <= mine[0].ts
        wait_for(lambda: status().get("store_down_since") is None, timeout=30)
        assert store.get_session("alpha").desired_state == "running"

        # A monitor (re)started while the store is down waits for it, rather than exit
        # in a loop until supervisord gives up on it (FATAL).
        own_server.stop()
        old = monitor()
        assert old is not None and old.pid
        os.kill(old.pid, signal.SIGKILL)
        reborn = wait_for(
            lambda: (m := monitor()) and m.state == "RUNNING" and m.pid != old.pid and m,
            timeout=30,
        )
        own_server.start()
        wait_for(lambda: status().get("pid") == reborn.pid, timeout=60)
        checks = status()["checks"]
        wait_for(lambda: status().get("checks", 0) >= checks + 2, timeout=30)
        now = monitor()
        assert now is not None and now.pid == reborn.pid, "it waited, it did not exit"
        assert store.get_health("alpha").restarts == 1
    finally:
        store.close()
        teardown_env(env)  # while PostgreSQL still runs, so runners stop cleanly
