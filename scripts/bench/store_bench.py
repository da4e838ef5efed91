"""The three stores side by side at 200 sessions: `zapvisor list --json`, one TUI refresh
tick's store query (`list_sessions` of this host), and port reservations per second with
two processes creating sessions at once.

    .venv/bin/python scripts/bench/store_bench.py [--sessions 200] [--runs 5]

sqlite is a file in a private state dir; postgres is a real PostgreSQL started from the
machine's binaries (as the tests do); supabase is the supabase store over HTTP against
tests/postgrest_emulator.py in front of that PostgreSQL (no real PostgREST can run here,
so its figures show the store's own REST overhead on loopback, not a hosted project's
network latency). One supervisord with the same 200 stopped programs serves every store's
`list`, so the differences are the store's. Prints figures; compare ratios within one
run (the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ecosystem.models import NewSession  # noqa: E402
from ecosystem.paths import StatePaths  # noqa: E402
from ecosystem.states import DesiredState  # noqa: E402
from ecosystem.store import Store  # noqa: E402
from ecosystem.store.postgres import PostgresStore  # noqa: E402
from ecosystem.store.sqlite import SQLiteStore  # noqa: E402
from ecosystem.store.supabase import SupabaseStore  # noqa: E402
from ecosystem.supctl import daemon  # noqa: E402
from scripts.bench.freeports import free_block  # noqa: E402
from tests.pgserver import AUTHENTICATOR_PASSWORD, PgServer  # noqa: E402
from tests.postgrest_emulator import SERVICE_KEY, PostgrestEmulator  # noqa: E402

HOST = "bench-host"
Factory = Callable[[], Store]


def fill(store: Store, count: int, base: int) -> float:
    t0 = time.perf_counter()
    for i in range(count):
        store.create_session(
            NewSession(
                name=f"bench-{i:03d}",
                desired_state=DesiredState.STOPPED,
                ai_config={"model": "m", "system_prompt": "olá " * 20},
                timing_config={"reply_delay": [1, 2]},
            ),
            host=HOST,
            ports=range(base, base + count),
            exclude_ports=(),
            max_sessions=count,
            actor="bench",
            api_token_hash="ab" * 32,
        )
    return time.perf_counter() - t0


def _race(factory: Factory, prefix: str, count: int, out: Any) -> None:
    store = factory()
    t0 = time.perf_counter()
    for i in range(count):
        store.create_session(
            NewSession(name=f"{prefix}-{i:03d}", desired_state=DesiredState.STOPPED),
            host=f"race-{prefix[:1]}",
            ports=range(50000, 50000 + 2 * count),
            exclude_ports=(),
            max_sessions=2 * count,
            actor=prefix,
        )
    out.put(time.perf_counter() - t0)


def race(factory: Factory, tag: str, per_writer: int) -> tuple[float, int]:
    """Two processes reserve ``per_writer`` ports each for one host at the same time."""
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    t0 = time.perf_counter()
    procs = [ctx.Process(target=_race, args=(factory, f"{tag}{w}", per_writer, out)) for w in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    elapsed = time.perf_counter() - t0
    if any(p.exitcode != 0 for p in procs):
        raise SystemExit(f"{tag}: a writer failed")
    store = factory()
    ports = [s.port for s in store.list_sessions(f"race-{tag[:1]}")]
    store.close()
    assert len(ports) == len(set(ports)) == 2 * per_writer, "duplicate port handed out"
    return elapsed, len(ports)


def timed(fn: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--writers-each", type=int, default=50)
    args = ap.parse_args()
    n = args.sessions
    base = free_block(n, start=16000)
    home = Path(tempfile.mkdtemp(prefix="zv-bench-", dir="/tmp")) / "home"
    server = PgServer(free_block(1, start=base + n + 10))
    server.start()
    server.add_supabase_roles()
    api: PostgrestEmulator | None = None
    env_base = {k: v for k, v in os.environ.items() if not k.startswith(("ZAPVISOR_", "SUPABASE_"))}
    env_base.update(
        ZAPVISOR_HOME=str(home),
        BASE_PORT=str(base),
        MAX_SESSIONS=str(n),
        ZAPVISOR_HOST_ID=HOST,
    )
    try:
        server.supabase_like_database("bench_pg")
        server.supabase_like_database("bench_sb")
        for db in ("bench_pg", "bench_sb"):
            PostgresStore(server.dsn(db)).migrate()
        api = PostgrestEmulator(
            server.dsn("bench_sb", user="authenticator", password=AUTHENTICATOR_PASSWORD)
        ).start()
        pg_dsn = server.dsn("bench_pg")
        sb_url = api.url

        def sqlite_factory() -> Store:
            store = SQLiteStore(home / "zapvisor.db")
            store.migrate()
            return store

        stores: dict[str, tuple[Factory, dict[str, str]]] = {
            "sqlite": (sqlite_factory, {}),
            "postgres": (lambda: PostgresStore(pg_dsn), {"ZAPVISOR_DATABASE_URL": pg_dsn}),
            "supabase": (
                lambda: SupabaseStore(sb_url, SERVICE_KEY),
                {"SUPABASE_URL": sb_url, "SUPABASE_SERVICE_ROLE_KEY": SERVICE_KEY},
            ),
        }
        print(f"{n} sessions per store, {os.cpu_count()} cpus; medians of {args.runs} runs")
        print(
            f"{'store':<9} {'fill (s)':>9} {'tick query (ms)':>16} {'list --json (s)':>16} "
            f"{'2-writer reservations/s':>24}"
        )
        home.mkdir(parents=True, mode=0o700)
        for kind, (factory, extra) in stores.items():
            store = factory()
            fill_s = fill(store, n, base)
            tick = timed(partial(store.list_sessions, HOST), args.runs * 4) * 1000
            store.close()
            env = env_base | extra
            cmd = [sys.executable, "-m", "tui.cli.main", "list", "--json"]
            subprocess.run(cmd, env=env, capture_output=True, check=True, cwd=home.parent)

            def run_list(env: dict[str, str] = env, cmd: list[str] = cmd) -> None:
                out = subprocess.run(cmd, env=env, capture_output=True, check=True)
                assert out.stdout.count(b'"name"') == n

            listing = timed(run_list, args.runs)
            elapsed, total = race(factory, kind[:2], args.writers_each)
            print(
                f"{kind:<9} {fill_s:>9.2f} {tick:>16.1f} {listing:>16.3f} "
                f"{total / elapsed:>16.0f} ({total} in {elapsed:.2f} s)"
            )
        print("fill: one create_session after another (each reserves its port atomically)")
        print("tick query: Store.list_sessions(host) in-process, what a TUI refresh reads")
        print("list --json: a new process each time (imports, store, supervisord's info)")
    finally:
        paths = StatePaths(home)
        if paths.socket.exists():
            sup = daemon.client(paths)
            if daemon.is_up(sup):
                daemon.shutdown(paths, sup, timeout=120)
        if api is not None:
            api.stop()
        server.destroy()
        shutil.rmtree(home.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
