"""A PostgreSQL that is frozen, not down: the port accepts connections and nothing
answers. Every headless command fails within a bound naming the store, nothing is
changed, a long-lived store's call on an open connection fails too instead of hanging,
close() does not wait behind it, and all works again once the server resumes.

Everything is real: a private PostgreSQL server of this test's own (so no other test
sharing the per-worker cluster is frozen), stopped with SIGSTOP on the postmaster and
each backend, and `zapvisor` run as separate processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from ecosystem.errors import StoreError
from ecosystem.store.postgres import PostgresStore
from ecosystem.store.postgres_conn import ANSWER_TIMEOUT
from tests.conftest import Env, free_port_block, wait_for
from tests.pgserver import PgServer, find_bin
from tests.test_tui_quit_hang import _server_pids, _signal_all

pytestmark = pytest.mark.e2e

DEADLINE = 30.0
"""Generous for a loaded machine; the bounds are 5 s (connect) and 10 s (a call on an
open connection), and before the fix a call on an open connection never returned."""


@pytest.fixture
def private_pg() -> Iterator[PgServer]:
    if find_bin() is None:
        pytest.skip("PostgreSQL is not installed here (./scripts/test installs it with apt)")
    server = PgServer(free_port_block(1))
    try:
        server.start()
        server.execute('CREATE DATABASE "zv"')
        store = PostgresStore(server.dsn("zv"))
        store.migrate()
        store.close()
        yield server
    finally:
        server.destroy()


def _launch(env: Env, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tui.cli.main", *args],
        env=env.vars,
        cwd=env.home,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(name: str, proc: subprocess.Popen[str], until: float) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=max(0.1, until - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"`zapvisor {name}` still running {DEADLINE} s in") from None
    return proc.returncode, out, err


def test_a_frozen_server_fails_every_command_in_bounded_time(
    private_pg: PgServer, make_env: Callable[..., Env]
) -> None:
    dsn = private_pg.dsn("zv")
    env = make_env(ZAPVISOR_DATABASE_URL=dsn)
    env.home.mkdir(parents=True, mode=0o700)
    where = f"postgres store at 127.0.0.1:{private_pg.port}/zv"
    assert json.loads(env.cli("list", "--json").stdout) == []
    held = PostgresStore(dsn)  # a runner's or the monitor's: its connection is open
    stuck = PostgresStore(dsn)
    assert held.list_sessions("h") == [] and stuck.list_sessions("h") == []

    postmaster = private_pg.pid
    assert postmaster is not None
    frozen: list[int] = []
    errors: dict[str, BaseException] = {}

    def call(name: str, store: PostgresStore) -> None:
        try:
            store.list_sessions("h")
        except BaseException as exc:  # asserted below
            errors[name] = exc

    try:
        os.kill(postmaster, signal.SIGSTOP)  # first, so that no new backend starts
        frozen = _server_pids(postmaster)
        _signal_all(frozen, signal.SIGSTOP)
        started = time.monotonic()
        until = started + DEADLINE
        procs = {
            "list": _launch(env, "list"),
            "create": _launch(env, "create", "frozen1", "--json"),
            "doctor": _launch(env, "doctor", "--json"),
        }
        threads = [
            threading.Thread(target=call, args=("held", held)),
            threading.Thread(target=call, args=("stuck", stuck)),
        ]
        for t in threads:
            t.start()

        # close() while a call on the connection is stuck: returns at once and the
        # call fails with the timeout rather than hang on
        wait_for(lambda: stuck._watchdog.armed, 10)  # its call is on the wire
        closer = threading.Thread(target=stuck.close, daemon=True)  # daemon: may hang
        closer.start()
        closer.join(5.0)
        assert not closer.is_alive(), "close() waited behind a stuck call"

        results = {name: _finish(name, p, until) for name, p in procs.items()}
        for t in threads:
            t.join(max(0.1, until - time.monotonic()))
            assert not t.is_alive(), f"a call on an open connection still hangs {DEADLINE} s in"
        took = time.monotonic() - started
    finally:
        _signal_all(frozen, signal.SIGCONT)

    for name in ("list", "create"):
        code, out, err = results[name]
        assert code == 69, (name, code, out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and where in lines[0] and "did not answer within 5 s" in lines[0]
    code, out, err = results["doctor"]
    assert code == 1, (code, out, err)
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert checks["store"]["level"] == "fail"
    assert where in checks["store"]["detail"] and "did not answer" in checks["store"]["detail"]
    assert "ZAPVISOR_DATABASE_URL" in checks["store"]["fix"]
    assert checks["state dir"]["level"] == "ok" and "ports" in checks  # still checked
    assert isinstance(errors["held"], StoreError)
    assert f"did not answer within {ANSWER_TIMEOUT:g} s" in str(errors["held"])
    assert isinstance(errors["stuck"], StoreError) and where in str(errors["stuck"])
    print(f"every command and call failed within {took:.1f} s with the store frozen")

    # resumed: nothing was created, and the same store objects work again
    assert json.loads(env.cli("list", "--json").stdout) == []
    assert held.list_sessions("h") == [] and stuck.list_sessions("h") == []
    held.close()
    stuck.close()
    doctor = json.loads(env.cli("doctor", "--json", check=False).stdout)
    assert {c["name"]: c["level"] for c in doctor["checks"]}["store"] == "ok"
