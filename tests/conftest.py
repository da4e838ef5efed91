"""Shared fixtures: private state dirs, free port blocks, a real supervisord per test."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, overload

import pytest

from ecosystem.settings import Settings, make_settings

ROOT = Path(__file__).resolve().parents[1]
_SCRUB = ("ZAPVISOR_", "SUPABASE_", "BASE_PORT", "MAX_SESSIONS", "OPENAI_", "GEMINI_")
"""The caller's settings a test's zapvisor must not inherit (a developer's exported
OPENAI_API_KEY would give every session a host key)."""


T = TypeVar("T")

# The predicate is called with no arguments; it is typed Callable[..., ...] only because
# mypy cannot infer a lambda with a default argument (``lambda n=name: ...``, how a loop
# variable is captured) against Callable[[], ...] (python/mypy#12557).


@overload
def wait_for(
    predicate: Callable[..., bool], timeout: float = 15.0, interval: float = 0.05
) -> bool: ...


@overload
def wait_for(
    predicate: Callable[..., T | bool | None], timeout: float = 15.0, interval: float = 0.05
) -> T: ...


def wait_for(
    predicate: Callable[..., object], timeout: float = 15.0, interval: float = 0.05
) -> object:
    """Poll ``predicate`` until it returns something truthy; fail with a clear message.

    Returns that truthy value, so ``(m := f()) and m.ok and m`` gives back ``m``: the
    type is the predicate's without the None and False it returns while still waiting.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s (last value: {last!r})")


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


_next_block = [0]
_PORTS_LOW, _PORTS_HIGH = 10000, 32768
"""Test ports stay below the kernel's ephemeral range (32768-60999 here): a port in it
can be taken at any moment by an outgoing connection's source port."""


def _worker_ports() -> range:
    """This xdist worker's share of the test port range (the whole range without xdist),
    so parallel workers never race for the same ports, whatever ``-n``."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    count = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")
    workers = max(int(count) if count.isdigit() else 1, index + 1)
    span = (_PORTS_HIGH - _PORTS_LOW) // workers
    return range(_PORTS_LOW + index * span, _PORTS_LOW + (index + 1) * span)


def free_port_block(size: int) -> int:
    """The first port of ``size`` consecutive free loopback ports, in a range private to
    this xdist worker (below the ephemeral range); other test runs on the machine at the
    same time start elsewhere in it (by pid) and are stepped over by the bind check."""
    ports = _worker_ports()
    room = len(ports) - size
    if room <= 0:
        raise RuntimeError(f"no room for {size} ports in {ports}")
    offset = (os.getpid() % 7) * (room // 7)
    for _ in range(200):
        start = ports.start + (offset + _next_block[0]) % room
        _next_block[0] += size + 5
        if all(_port_free(p) for p in range(start, start + size)):
            return start
    raise RuntimeError("no free port block")


@dataclass
class Env:
    """A private zapvisor installation: its state dir, ports and environment."""

    home: Path
    base_port: int
    max_sessions: int
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def vars(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB)}
        env.update(
            ZAPVISOR_HOME=str(self.home),
            BASE_PORT=str(self.base_port),
            MAX_SESSIONS=str(self.max_sessions),
            ZAPVISOR_START_TIMEOUT="20",
        )
        env.update(self.extra)
        return env

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "home": self.home,
            "base_port": self.base_port,
            "max_sessions": self.max_sessions,
        }
        values.update(overrides)
        return make_settings(**values)

    def cli(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 60,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `zapvisor ARGS` as an operator would (a separate process, no TTY)."""
        proc = subprocess.run(
            [sys.executable, "-m", "tui.cli.main", *args],
            env=self.vars,
            cwd=self.home.parent,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"zapvisor {' '.join(args)} exited {proc.returncode}\n"
                f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
            )
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)

    def supervisord_pid(self) -> int | None:
        try:
            return int((self.home / "supervisord.pid").read_text().strip())
        except (OSError, ValueError):
            return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def teardown_env(env: Env) -> None:
    """Stop the supervisord this test started (and its runners), by pid."""
    pid = env.supervisord_pid()
    if pid and _alive(pid):
        subprocess.run(
            [sys.executable, "-m", "tui.cli.main", "shutdown"],
            env=env.vars,
            capture_output=True,
            timeout=90,
            check=False,
        )
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def make_env() -> Iterator[Callable[..., Env]]:
    made: list[Env] = []

    def make(max_sessions: int = 10, **extra: str) -> Env:
        home = Path(tempfile.mkdtemp(prefix="zv-", dir="/tmp")) / "home"
        env = Env(home, free_port_block(max_sessions), max_sessions, dict(extra))
        made.append(env)
        return env

    yield make
    for env in made:
        teardown_env(env)
        shutil.rmtree(env.home.parent, ignore_errors=True)


@pytest.fixture
def zv(make_env: Callable[..., Env]) -> Env:
    """A fresh private zapvisor (sim sessions, 10 ports)."""
    return make_env()


# -- PostgreSQL (the postgres and supabase stores) ----------------------------------------


@dataclass
class PgCluster:
    """One real PostgreSQL server per test worker, with a migrated template database
    set up like a Supabase project (its API roles and default grants)."""

    server: Any
    template: str = "zv_template"
    made: list[str] = field(default_factory=list)

    def new_database(self) -> str:
        """A fresh database holding the migrated schema (a copy of the template)."""
        name = f"zv_{os.getpid()}_{len(self.made)}"
        self.server.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        self.made.append(name)
        return name

    def drop_database(self, name: str) -> None:
        self.server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def dsn(self, dbname: str, **kwargs: str) -> str:
        return str(self.server.dsn(dbname, **kwargs))


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    from ecosystem.store.postgres import PostgresStore
    from tests.pgserver import PgServer, find_bin

    if find_bin() is None:
        pytest.skip("PostgreSQL is not installed here (./scripts/test installs it with apt)")
    server = PgServer(free_port_block(1))
    try:
        server.start()
        server.add_supabase_roles()
        cluster = PgCluster(server)
        server.supabase_like_database(cluster.template)
        store = PostgresStore(server.dsn(cluster.template))
        store.migrate()
        store.close()
        yield cluster
    finally:
        server.destroy()


@pytest.fixture
def pg_dsn(pg_cluster: PgCluster) -> Iterator[str]:
    """The DSN of a fresh, migrated database of its own."""
    name = pg_cluster.new_database()
    yield pg_cluster.dsn(name)
    pg_cluster.drop_database(name)


@pytest.fixture
def pg_store(pg_dsn: str) -> Iterator[Any]:
    """A PostgresStore on ``pg_dsn``, to look at what the hosts under test wrote."""
    from ecosystem.store.postgres import PostgresStore

    s = PostgresStore(pg_dsn)
    yield s
    s.close()


# -- remote hosts over real OpenSSH (the fleet tests): see tests/fleet_fixtures.py ------

from tests.fleet_fixtures import (  # noqa: E402 - needs the fixtures above
    fleet,
    fleet_venv,
    make_sshd,
    ssh_key,
    sshd,
)

__all__ = ["fleet", "fleet_venv", "make_sshd", "ssh_key", "sshd"]
