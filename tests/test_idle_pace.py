"""How often an idle runner wakes up and writes the store: on a store only its host uses
(SQLite) a runner's lease lasts ONE_HOST_LEASE_SECONDS (renewed every third of it) and
a sim link beats as seldom; on a shared store (PostgreSQL) both keep
ZAPVISOR_LEASE_SECONDS and SIM_BEAT_SECONDS, which failover relies on. The heartbeat
comes every beat_every(ZAPVISOR_HEALTH_INTERVAL), or with a QR code's rotation. Real
stores, runners built in-process (nothing is served)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta

import pytest

from ecosystem.heartbeat import ACTIVITY_SLACK, Beat, Heartbeats, beat_every, beats_path, fresh_for
from ecosystem.lease import (
    ONE_HOST_LEASE_SECONDS,
    SIM_BEAT_SECONDS,
    SIM_ONE_HOST_BEAT_SECONDS,
    AuthKind,
)
from ecosystem.models import NewSession, Session, utcnow
from ecosystem.settings import Settings
from ecosystem.store import Store, open_store
from runner.core import Runner
from tests.conftest import Env

pytestmark = pytest.mark.e2e


def _runner(settings: Settings, store: Store, auth: AuthKind) -> Runner:
    return Runner(settings, store, "pace", _session(settings, store, auth))


def _session(settings: Settings, store: Store, auth: AuthKind) -> int:
    """Creates the session ``pace``; returns its port."""
    store.create_session(
        NewSession(name="pace", connector="sim", auth=auth),
        host=settings.host_id,
        ports=range(settings.base_port, settings.base_port + settings.max_sessions),
        exclude_ports=(),
        max_sessions=settings.max_sessions,
        actor="test",
    )
    return store.get_session("pace").port


def test_on_sqlite_an_idle_runner_renews_and_beats_seldom(zv: Env) -> None:
    settings = zv.settings(lease_seconds=30)
    store = open_store(settings)
    store.migrate()
    try:
        runner = _runner(settings, store, AuthKind.STORE)
        assert runner.lease.timing.ttl == ONE_HOST_LEASE_SECONDS
        assert runner.lease.timing.renew_every == ONE_HOST_LEASE_SECONDS / 3
        assert runner.lease.required is False
        assert runner.sim_server is not None
        assert runner.sim_server.beat_every == SIM_ONE_HOST_BEAT_SECONDS
        # the lease's renewal already tells a second runner here to stop: the link
        # beating more often would notice nothing sooner, and wakes 200 runners for it
        assert runner.sim_server.beat_every >= runner.lease.timing.renew_every
        runner.sim_server.shutdown()
    finally:
        store.close()


def test_on_a_shared_store_the_lease_and_the_beat_keep_their_pace(zv: Env, pg_dsn: str) -> None:
    settings = zv.settings(database_url=pg_dsn, lease_seconds=6)
    store = open_store(settings)
    try:
        runner = _runner(settings, store, AuthKind.STORE)
        assert runner.lease.timing.ttl == 6
        assert runner.lease.required is True
        assert runner.sim_server is not None
        assert runner.sim_server.beat_every == SIM_BEAT_SECONDS
        runner.sim_server.shutdown()
    finally:
        store.close()


def test_a_qr_rotation_carries_the_heartbeat(zv: Env) -> None:
    """A runner beats, then not again for beat_every seconds; a QR code's rotation beats
    too and puts the timed beat off past the next rotation (every ZAPVISOR_SIM_QR_SECONDS,
    20 s = beat_every at the default 5 s checks), so a waiting runner wakes up once a
    rotation, not again for its heartbeat. The monitor still accepts the oldest beat
    this leaves."""
    settings = zv.settings(health_interval=5.0, sim_qr_seconds=20.0)
    store = open_store(settings)
    store.migrate()
    beats = Heartbeats(beats_path(settings.home), settings.base_port, settings.max_sessions)
    try:
        runner = _runner(settings, store, AuthKind.LOCAL)

        async def run() -> tuple[float, Beat | None, float, Beat | None]:
            loop = asyncio.get_running_loop()
            runner.reporter.start()
            runner.pulse.beat()
            assert runner.pulse.next is not None
            timed, first = runner.pulse.next.when() - loop.time(), beats.last(runner.port)
            await asyncio.sleep(0.01)
            await runner.events.qr("2@rotated", utcnow() + timedelta(seconds=20))
            assert runner.pulse.next is not None
            put_off, second = runner.pulse.next.when() - loop.time(), beats.last(runner.port)
            await runner.outbox.flush()
            await runner.reporter.close()
            return timed, first, put_off, second

        timed, first, put_off, second = asyncio.run(run())
        assert timed == pytest.approx(beat_every(5.0), abs=0.5)
        assert first is not None and first.pid == os.getpid()
        assert second is not None and second.when > first.when, "the rotation beat"
        assert put_off > settings.sim_qr_seconds, "the next rotation comes before a timed beat"
        assert put_off == pytest.approx(beat_every(5.0) + ACTIVITY_SLACK, abs=0.5)
        assert fresh_for(5.0) > put_off + 5.0, "a beat that old is still fresh at a check"
        if runner.sim_server is not None:
            runner.sim_server.shutdown()
    finally:
        beats.close()
        store.close()


def test_a_qr_rotation_takes_one_trip_to_the_store(zv: Env) -> None:
    """A rotation's report and its qr_code event share one trip to the store thread: the
    event is judged from the row the report's write read back, never from a second read
    of the session. That row is read after the event was made, so a webhook configured
    just before (as `zapvisor config` does, in the store) gets the event. Real store;
    its get_session is counted, not replaced."""
    settings = zv.settings(sim_qr_seconds=20.0)
    store = open_store(settings)
    store.migrate()
    try:
        runner = _runner(settings, store, AuthKind.LOCAL)
        reads = 0
        get_session = store.get_session

        def counted(name: str) -> Session:
            nonlocal reads
            reads += 1
            return get_session(name)

        store.get_session = counted  # type: ignore[method-assign]

        async def rotate(n: int) -> None:
            await runner.events.qr(f"2@rotation-{n}", utcnow() + timedelta(seconds=20))
            await runner.outbox.flush()
            assert await runner.reporter.flush()

        async def run() -> None:
            runner.reporter.start()
            await rotate(0)  # the first QR: a status change too (connection_change)
            before = reads
            await rotate(1)
            assert reads == before, "the rotation's event read the session again"
            assert store.next_webhook_due("pace") is None, "no webhook: nothing kept"
            store.update_session(
                "pace",
                {"webhook_url": "https://hooks.example/wa"},
                actor="test",
                action="configure",
            )
            await rotate(2)
            assert reads == before
            await runner.reporter.close()

        asyncio.run(run())
        assert get_session("pace").qr_payload == "2@rotation-2"
        assert store.next_webhook_due("pace") is not None, "the configured webhook got it"
        if runner.sim_server is not None:
            runner.sim_server.shutdown()
    finally:
        store.close()


SERVE = """
import asyncio, gc, sys
from pathlib import Path
from ecosystem.settings import make_settings
from ecosystem.store import open_store
from runner.core import Runner

async def main() -> None:
    home, base, size, port = Path(sys.argv[1]), *map(int, sys.argv[2:])
    settings = make_settings(home=home, base_port=base, max_sessions=size)
    runner = Runner(settings, open_store(settings), "pace", port)
    before = gc.get_freeze_count()
    serving = asyncio.create_task(runner.serve())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while gc.get_freeze_count() == before and loop.time() < deadline:
        await asyncio.sleep(0.05)
    print(before, gc.get_freeze_count(), flush=True)
    runner.request_stop()
    await serving

asyncio.run(main())
"""


def test_a_serving_runner_keeps_its_start_up_objects_out_of_full_collections(zv: Env) -> None:
    """Once it serves, a runner has frozen what it made to start (gc.freeze), so the full
    collections its timers trigger at rest look at what came since, not at tens of
    thousands of objects. A real runner process (started directly, no supervisord)."""
    settings = zv.settings()
    store = open_store(settings)
    store.migrate()
    try:
        port = _session(settings, store, AuthKind.LOCAL)
    finally:
        store.close()
    args = [str(settings.home), str(settings.base_port), str(settings.max_sessions), str(port)]
    done = subprocess.run(
        [sys.executable, "-c", SERVE, *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    before, after = map(int, done.stdout.split())
    assert before == 0 and after > 10_000, "the start-up objects were frozen"
