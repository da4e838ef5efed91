"""The webhook outbox and the health records on the three stores, side by side.

    .venv/bin/python scripts/bench/outbox_bench.py [--events 600] [--sessions 200]

Per store: events enqueued per second (one runner writing), events drained per second
(claim 20, record each as delivered: the runner's loop without the HTTP), the same drain
by two processes claiming one session's outbox at once (and a check that no event was
claimed twice), and the health monitor's writes: one save_health per session, one
list_health, one raise + clear of an alert.

sqlite is a file in a private temp dir; postgres is a real PostgreSQL started from the
machine's binaries (as the tests do); supabase is the supabase store over HTTP against
tests/postgrest_emulator.py in front of that PostgreSQL (no real PostgREST can run here,
so its figures show the store's own REST overhead on loopback, not a hosted project's
network latency). Prints figures; compare ratios within one run (the machine is shared).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ecosystem.health.model import AlertKind, NewAlert, SessionHealth  # noqa: E402
from ecosystem.models import NewSession, utcnow  # noqa: E402
from ecosystem.states import DesiredState  # noqa: E402
from ecosystem.store import Store  # noqa: E402
from ecosystem.store.postgres import PostgresStore  # noqa: E402
from ecosystem.store.sqlite import SQLiteStore  # noqa: E402
from ecosystem.store.supabase import SupabaseStore  # noqa: E402
from ecosystem.webhook_events import DeliveryState, new_event  # noqa: E402
from tests.pgserver import AUTHENTICATOR_PASSWORD, PgServer  # noqa: E402
from tests.postgrest_emulator import SERVICE_KEY, PostgrestEmulator  # noqa: E402

Factory = Callable[[], Store]
HOST = "bench-host"
LEASE = timedelta(minutes=5)


def free_port(start: int = 41500) -> int:
    import socket

    for port in range(start, 65000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit("no free port")


def enqueue(store: Store, session: str, count: int) -> float:
    t0 = time.perf_counter()
    for i in range(count):
        store.enqueue_webhook(
            new_event(session, "message_received", {"message": {"id": str(i), "body": "olá"}})
        )
    return time.perf_counter() - t0


def drain(store: Store, session: str) -> list[str]:
    """The runner's loop without the HTTP: claim a batch, record each one delivered."""
    done: list[str] = []
    while batch := store.due_webhooks(session, utcnow(), 20, lease=LEASE):
        for row in batch:
            store.record_webhook_attempt(
                row.event_id, state=DeliveryState.DELIVERED, attempts=1, at=utcnow(), status=200
            )
            done.append(row.event_id)
    return done


def _drain_proc(factory: Factory, session: str, start: Any, out: Any) -> None:
    store = factory()
    start.wait(60)
    out.put(drain(store, session))
    store.close()


def drain_two(factory: Factory, session: str) -> tuple[float, int, int]:
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_drain_proc, args=(factory, session, start, out)) for _ in "ab"]
    for p in procs:
        p.start()
    time.sleep(0.5)  # let both connect before the gate opens (not a measured interval)
    t0 = time.perf_counter()
    start.set()
    got = [out.get(timeout=300) for _ in procs]
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join(60)
    ids = got[0] + got[1]
    return elapsed, len(ids), len(ids) - len(set(ids))


def sessions(store: Store, count: int) -> None:
    for i in range(count):
        store.create_session(
            NewSession(name=f"s-{i:03d}", desired_state=DesiredState.STOPPED),
            host=HOST,
            ports=range(20000, 20000 + count + 2),
            exclude_ports=(),
            max_sessions=count + 2,
            actor="bench",
        )


def health_pass(store: Store, count: int) -> tuple[float, float, float]:
    t0 = time.perf_counter()
    for i in range(count):
        store.save_health(SessionHealth(name=f"s-{i:03d}", restarts=i, recent_exits=[utcnow()]))
    saves = time.perf_counter() - t0
    t0 = time.perf_counter()
    assert len(store.list_health(HOST)) == count
    listing = time.perf_counter() - t0
    t0 = time.perf_counter()
    alert = NewAlert(host=HOST, key="ram", kind=AlertKind.RAM, message="RAM 91%")
    assert store.raise_alert(alert) is not None
    assert store.clear_alert(HOST, "ram") is not None
    cycle = time.perf_counter() - t0
    return saves, listing, cycle


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=600)
    ap.add_argument("--sessions", type=int, default=200)
    args = ap.parse_args()
    n, count = args.events, args.sessions
    tmp = Path(tempfile.mkdtemp(prefix="zv-outbox-bench-", dir="/tmp"))
    server = PgServer(free_port())
    server.start()
    server.add_supabase_roles()
    api: PostgrestEmulator | None = None
    try:
        for db in ("bench_pg", "bench_sb"):
            server.supabase_like_database(db)
            PostgresStore(server.dsn(db)).migrate()
        api = PostgrestEmulator(
            server.dsn("bench_sb", user="authenticator", password=AUTHENTICATOR_PASSWORD)
        ).start()
        pg_dsn, sb_url = server.dsn("bench_pg"), api.url

        def sqlite_factory() -> Store:
            store = SQLiteStore(tmp / "zapvisor.db")
            store.migrate()
            return store

        factories: dict[str, Factory] = {
            "sqlite": sqlite_factory,
            "postgres": lambda: PostgresStore(pg_dsn),
            "supabase": lambda: SupabaseStore(sb_url, SERVICE_KEY),
        }
        print(f"{n} events, {count} sessions per store, {os.cpu_count()} cpus")
        print(
            f"{'store':<9} {'enqueue/s':>10} {'drain/s':>8} {'2-proc drain/s':>15} {'dups':>5} "
            f"{'save_health (ms)':>17} {'list_health (ms)':>17} {'alert (ms)':>11}"
        )
        for kind, factory in factories.items():
            store = factory()
            sessions(store, count)
            put = enqueue(store, "s-000", n)
            t0 = time.perf_counter()
            drained = drain(store, "s-000")
            one = time.perf_counter() - t0
            assert len(drained) == n
            enqueue(store, "s-001", n)
            two, total, dups = drain_two(factory, "s-001")
            assert total - dups == n
            saves, listing, cycle = health_pass(store, count)
            store.close()
            print(
                f"{kind:<9} {n / put:>10.0f} {n / one:>8.0f} {n / two:>15.0f} {dups:>5} "
                f"{saves / count * 1000:>17.2f} {listing * 1000:>17.1f} {cycle * 1000:>11.1f}"
            )
        print("drain: claim 20 due events, record each delivered (no HTTP), until none is due")
        print("2-proc drain: two processes draining one session at once; dups must be 0")
        print("save_health: per record; list_health: one host's records; alert: raise + clear")
    finally:
        if api is not None:
            api.stop()
        server.destroy()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
