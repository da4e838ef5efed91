"""A runner whose lease it cannot take yet, in-process on a real PostgreSQL with a real
port: a session that can fail over listens and answers /health (saying it waits for its
lease) but connects to nothing and writes nothing of the session's until the lease is
its host's; a session that cannot fail over (local auth) runs at once and takes the
lease when it can. (In-process so the lease can be held "by another host" with one SQL
statement; the supervised path is covered by the failover end-to-end tests. Sim
sessions stand in for WhatsApp, which cannot be reached from here.)"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from ecosystem.apitoken import hash_token, new_token
from ecosystem.errors import RunnerError
from ecosystem.lease import AuthKind
from ecosystem.models import NewSession
from ecosystem.settings import Settings
from ecosystem.states import Status
from ecosystem.store.postgres import PostgresStore
from runner.core import Runner
from tests.conftest import Env
from tests.test_session_api import call

pytestmark = pytest.mark.e2e

NAME = "leased"
PHONE = "5511977776666"


@pytest.fixture
def host_a(make_env: Callable[..., Env], pg_dsn: str) -> Env:
    return make_env(max_sessions=2)


@pytest.fixture
def store(pg_dsn: str) -> Iterator[PostgresStore]:
    s = PostgresStore(pg_dsn)
    yield s
    s.close()


def _create(env: Env, store: PostgresStore, auth: AuthKind, host: str = "host-a") -> str:
    token = new_token()
    store.create_session(
        NewSession(name=NAME, connector="sim", auth=auth),
        host=host,
        ports=range(env.base_port, env.base_port + env.max_sessions),
        exclude_ports=(),
        max_sessions=env.max_sessions,
        actor="test",
        api_token_hash=hash_token(token),
    )
    return token


def _hold_elsewhere(dsn: str, expires_in: str) -> None:
    """The lease as another host holding it (a move being handed over, a host that
    still renews): holder host-z, until ``expires_in`` from the database's now."""
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute(
            "INSERT INTO session_leases (session_name, holder, epoch, expires_at) "
            "VALUES (%s, 'host-z', 5, now() + %s::interval) ON CONFLICT (session_name) "
            "DO UPDATE SET holder = 'host-z', epoch = 5, expires_at = excluded.expires_at",
            (NAME, expires_in),
        )


def _health(port: int) -> dict[str, Any] | None:
    try:
        status, body = call(port, "/health", None)
    except RunnerError:
        return None
    return body if status == 200 else None


def _health_when(port: int, ok: Callable[[dict[str, Any]], bool]) -> Callable[[], Any]:
    """A check: the runner's /health answer once ``ok`` holds for it."""
    return lambda: (body := _health(port)) is not None and ok(body) and body


async def _until(serve: asyncio.Task[int], check: Callable[[], Any]) -> Any:
    """What ``check`` returns once truthy, the runner still serving (30 s at most)."""
    deadline = asyncio.get_running_loop().time() + 30
    while not (got := await asyncio.to_thread(check)):
        assert not serve.done(), f"the runner ended: {serve.result()}"
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)
    return got


def _with_runner(
    dsn: str, settings: Settings, port: int, scenario: Callable[[Runner, asyncio.Task[int]], Any]
) -> None:
    """Serve the session in-process (its own store connection) while ``scenario`` runs,
    then stop it: it must end cleanly."""

    async def run() -> None:
        runner = Runner(settings, own, NAME, port)
        serve = asyncio.create_task(runner.serve())
        await scenario(runner, serve)
        runner.request_stop()
        assert await asyncio.wait_for(serve, 30) == 0

    own = PostgresStore(dsn)
    try:
        asyncio.run(run())
    finally:
        own.close()


def test_a_session_that_can_fail_over_waits_for_its_lease_answering_health(
    host_a: Env, store: PostgresStore, pg_dsn: str
) -> None:
    settings = host_a.settings(database_url=pg_dsn, host_id="host-a", lease_seconds=6)
    token = _create(host_a, store, AuthKind.STORE)
    store.save_sim_auth(NAME, "device-1", PHONE)  # paired: it would connect at once
    _hold_elsewhere(pg_dsn, "1 hour")
    before = store.get_session(NAME)
    port = before.port

    async def scenario(runner: Runner, serve: asyncio.Task[int]) -> None:
        health = await _until(serve, _health_when(port, lambda h: "host-z" in h["lease"]))
        assert health["status"] == Status.INITIALIZING and health["ok"]
        assert health["lease"].startswith("waiting: ") and "host-z" in health["lease"], health
        status, body = await asyncio.to_thread(call, port, "/status", token)
        assert status == 503 and "waiting for its lease" in body["error"], body
        # nothing of the session was touched: no link to WhatsApp, no status written
        assert store.sim_links(NAME) == []
        after = store.get_session(NAME)
        assert (after.status, after.updated_at) == (before.status, before.updated_at)
        lease = store.lease_info(NAME).lease
        assert lease is not None and (lease.holder, lease.epoch) == ("host-z", 5)

        _hold_elsewhere(pg_dsn, "-1 second")  # host-z let it run out
        connected = _health_when(port, lambda h: h["status"] == Status.CONNECTED)
        health = await _until(serve, connected)
        assert health["lease"] == "held (epoch 6)", health
        await _until(serve, lambda: store.get_session(NAME).status == Status.CONNECTED)
        assert store.get_session(NAME).phone == PHONE, "the same phone, no QR"
        links = [(link.host, link.epoch, link.device) for link in store.sim_links(NAME)]
        assert links == [("host-a", 6, "device-1")]

    _with_runner(pg_dsn, settings, port, scenario)


def test_a_session_that_cannot_fail_over_runs_without_waiting_for_its_lease(
    host_a: Env, store: PostgresStore, pg_dsn: str
) -> None:
    settings = host_a.settings(database_url=pg_dsn, host_id="host-a", lease_seconds=6)
    _create(host_a, store, AuthKind.LOCAL)
    _hold_elsewhere(pg_dsn, "1 hour")
    port = store.get_session(NAME).port

    async def scenario(runner: Runner, serve: asyncio.Task[int]) -> None:
        # it runs (a QR) while its first ask for the lease may still be on its way
        qr = _health_when(
            port, lambda h: h["status"] == Status.WAITING_SCAN and not h["lease"].endswith("asking")
        )
        health = await _until(serve, qr)
        assert health["lease"].startswith("not taken yet, not needed (cannot fail over)")
        assert "host-z" in health["lease"], health
        await _until(serve, lambda: store.get_session(NAME).status == Status.WAITING_SCAN)

        _hold_elsewhere(pg_dsn, "-1 second")
        await _until(serve, _health_when(port, lambda h: h["lease"] == "held (epoch 6)"))
        lease = store.lease_info(NAME).lease
        assert lease is not None and (lease.holder, lease.epoch) == ("host-a", 6)

    _with_runner(pg_dsn, settings, port, scenario)


def test_a_session_now_on_another_host_is_not_started_here(
    host_a: Env, store: PostgresStore, pg_dsn: str
) -> None:
    """A program left behind by a move: the runner ends at once, without listening on a
    port that may be another session's by now."""
    settings = host_a.settings(database_url=pg_dsn, host_id="host-a", lease_seconds=6)
    _create(host_a, store, AuthKind.STORE, host="host-b")
    port = store.get_session(NAME).port

    async def scenario() -> int:
        return await Runner(settings, own, NAME, port).serve()

    own = PostgresStore(pg_dsn)
    try:
        assert asyncio.run(scenario()) == 0
    finally:
        own.close()
    assert store.lease_info(NAME).lease is None and store.sim_links(NAME) == []


def test_a_lease_free_to_take_is_taken_and_reported_before_health_answers(
    host_a: Env, store: PostgresStore, pg_dsn: str
) -> None:
    """A session that can fail over, its lease free: the runner takes it and writes its
    start before its port answers, so whoever waits for /health (a create, a start, a
    boot) reads this runner's status, not the last one's. The lease's row is locked for
    a moment by another connection, which holds the runner inside its first try."""
    settings = host_a.settings(database_url=pg_dsn, host_id="host-a", lease_seconds=6)
    _create(host_a, store, AuthKind.STORE)
    _hold_elsewhere(pg_dsn, "-1 second")  # ran out: free to take
    with psycopg.connect(pg_dsn, autocommit=True) as db:
        db.execute(
            "UPDATE whatsapp_sessions SET status = 'disconnected' WHERE session_name = %s", (NAME,)
        )
    port = store.get_session(NAME).port

    async def scenario(runner: Runner, serve: asyncio.Task[int]) -> None:
        await asyncio.sleep(0.5)  # the runner is blocked on the lock by now
        first = await _until(serve, lambda: _health(port))
        assert store.get_session(NAME).status != Status.DISCONNECTED, first
        assert first["lease"] == "held (epoch 6)", first

    with psycopg.connect(pg_dsn) as blocker:
        blocker.execute("SELECT 1 FROM session_leases WHERE session_name = %s FOR UPDATE", (NAME,))
        threading.Timer(0.8, blocker.commit).start()
        _with_runner(pg_dsn, settings, port, scenario)


def test_a_session_that_cannot_fail_over_reports_its_start_before_health_answers(
    host_a: Env, store: PostgresStore, pg_dsn: str
) -> None:
    """A session with local auth runs without waiting for its lease, yet its first
    report (initializing) reaches the store before its port answers: a `list` that
    started supervisord, or a create, reads this runner's status, not the one its last
    runner wrote on its way out. The session's row is locked for a moment by another
    connection, which holds that first write back; /health is polled from the start."""
    settings = host_a.settings(database_url=pg_dsn, host_id="host-a", lease_seconds=6)
    _create(host_a, store, AuthKind.LOCAL)
    with psycopg.connect(pg_dsn, autocommit=True) as db:
        db.execute(
            "UPDATE whatsapp_sessions SET status = 'disconnected' WHERE session_name = %s", (NAME,)
        )
    port = store.get_session(NAME).port

    async def scenario(runner: Runner, serve: asyncio.Task[int]) -> None:
        first = await _until(serve, lambda: _health(port))
        assert store.get_session(NAME).status != Status.DISCONNECTED, first

    with psycopg.connect(pg_dsn) as blocker:
        blocker.execute(
            "SELECT 1 FROM whatsapp_sessions WHERE session_name = %s FOR UPDATE", (NAME,)
        )
        threading.Timer(0.8, blocker.commit).start()
        _with_runner(pg_dsn, settings, port, scenario)
