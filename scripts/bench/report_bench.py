"""What one runner report (``Store.set_runtime``, as the runner's Reporter writes it)
costs the store: statements and time per report, on SQLite and PostgreSQL.

    .venv/bin/python scripts/bench/report_bench.py [--reports 400] [--no-postgres]

Each store gets one session whose lease a runner holds, with the runner's fence set (its
writes are checked against the lease), and three kinds of report in turn: a status change
(which records an event), a QR rotation (qr_payload and qr_expires_at, no status change)
and a no-op (the values already in the row). SQLite's statements are counted with
``sqlite3.Connection.set_trace_callback`` (a trigger's program is reported again with the
text of the statement that fired it: those repeats are counted apart, as "trigger"), the
row writes with ``total_changes``; PostgreSQL's as the statements the client sends (each
``execute``, by the function it calls) and the transactions it opens (BEGIN and COMMIT,
two more round trips each). PostgreSQL is a real server
started from the machine's binaries, as the tests do. Run it from any tree (it imports
the tree it lives in), so two trees compare. Figures are medians of per-report times;
compare ratios within one run (the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ecosystem.models import NewSession  # noqa: E402
from ecosystem.session import utcnow  # noqa: E402
from ecosystem.states import Status  # noqa: E402
from ecosystem.store import Store  # noqa: E402
from ecosystem.store.sqlite import SQLiteStore  # noqa: E402
from scripts.bench.freeports import free_block  # noqa: E402

HOST = "bench-host"
NAME = "bench"


def kinds() -> Iterator[tuple[str, dict[str, Any]]]:
    """Status change, QR rotation, no-op, for ever."""
    n = 0
    statuses = (Status.WAITING_SCAN, Status.RECONNECTING)
    while True:
        n += 1
        yield "status", {"status": statuses[n % 2], "last_error": None}
        expires = utcnow().replace(microsecond=0) + timedelta(seconds=20)  # as stored
        qr = {"qr_payload": f"qr-{n}", "qr_expires_at": expires}
        yield "qr", qr
        yield "no-op", qr


def fenced(store: Store) -> None:
    store.create_session(
        NewSession(name=NAME),
        host=HOST,
        ports=range(20000, 20010),
        exclude_ports=[],
        max_sessions=10,
        actor="bench",
    )
    store.set_fence(store.acquire_lease(NAME, HOST, 300).fence)


def run(
    store: Store, reports: int, count: Callable[[], Counter[str]]
) -> dict[str, tuple[float, Counter[str]]]:
    """Per kind: median ms per report and the statements of one report."""
    times: dict[str, list[float]] = {}
    seen: dict[str, Counter[str]] = {}
    made = kinds()
    for _ in range(reports):
        kind, changes = next(made)
        count()  # reset
        t0 = time.perf_counter()
        store.set_runtime(NAME, changes, actor="runner")
        times.setdefault(kind, []).append((time.perf_counter() - t0) * 1000)
        seen[kind] = count()
    return {k: (statistics.median(v), seen[k]) for k, v in times.items()}


def sqlite_counter(store: SQLiteStore) -> Callable[[], Counter[str]]:
    traced: list[str] = []
    store._db.set_trace_callback(traced.append)
    changes = [store._db.total_changes]

    def take() -> Counter[str]:
        out: Counter[str] = Counter()
        previous = None
        for sql in traced:
            out["trigger" if sql == previous else sql.split(None, 1)[0].upper()] += 1
            previous = sql
        total = store._db.total_changes
        out["rows written"] = total - changes[0]
        changes[0] = total
        traced.clear()
        return out

    return take


def pg_counter(store: Any) -> Callable[[], Counter[str]]:
    """Wraps the store's connection's cursors so each execute is counted by its verb."""
    import psycopg

    sent: Counter[str] = Counter()
    original = psycopg.Cursor.execute

    def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        text = query if isinstance(query, str) else query.as_string(self.connection)
        sent[text.split(None, 1)[0].upper() + " " + _callee(text)] += 1
        return original(self, query, *args, **kwargs)

    psycopg.Cursor.execute = execute  # type: ignore[method-assign]
    opened = psycopg.Connection.transaction

    def transaction(self: Any, *args: Any, **kwargs: Any) -> Any:
        sent["BEGIN+COMMIT"] += 1
        return opened(self, *args, **kwargs)

    psycopg.Connection.transaction = transaction  # type: ignore[method-assign]

    def take() -> Counter[str]:
        out = Counter(sent)
        sent.clear()
        return out

    return take


def _callee(text: str) -> str:
    for word in ("zapvisor_update_session", "set_config"):
        if word in text:
            return word
    return ""


class SlowLink:
    """A TCP proxy on loopback that holds each chunk ``delay`` seconds each way, so a
    round trip to PostgreSQL costs what it does across a network (``--latency``)."""

    def __init__(self, target: int, delay: float) -> None:
        self.target, self.delay = target, delay
        self.port = free_block(1, start=17100)
        ready = threading.Event()
        threading.Thread(target=asyncio.run, args=(self._serve(ready),), daemon=True).start()
        ready.wait(10)

    async def _serve(self, ready: threading.Event) -> None:
        server = await asyncio.start_server(self._link, "127.0.0.1", self.port)
        ready.set()
        await server.serve_forever()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target)
        await asyncio.gather(self._pipe(reader, up_w), self._pipe(up_r, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def forward() -> None:
            while True:
                due, data = await queue.get()
                await asyncio.sleep(max(0.0, due - loop.time()))
                if not data:
                    writer.close()
                    return
                writer.write(data)
                await writer.drain()

        sender = asyncio.create_task(forward())
        while data := await reader.read(65536):
            queue.put_nowait((loop.time() + self.delay, data))
        queue.put_nowait((loop.time() + self.delay, b""))
        await sender


def show(title: str, figures: dict[str, tuple[float, Counter[str]]]) -> None:
    print(title)
    for kind, (ms, stmts) in figures.items():
        listed = ", ".join(f"{k} {v}" for k, v in sorted(stmts.items()))
        print(f"  {kind:7} {ms:7.3f} ms/report   {listed}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--reports", type=int, default=600, help="reports per store (default 600)")
    ap.add_argument("--no-postgres", action="store_true", help="measure SQLite only")
    ap.add_argument(
        "--latency",
        type=float,
        default=0.0,
        help="ms of round trip added between the PostgreSQL store and its server (default 0)",
    )
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="zv-report-bench-", dir="/tmp"))
    sqlite = SQLiteStore(home / "zapvisor.db")
    sqlite.migrate()
    fenced(sqlite)
    show(f"sqlite ({ROOT})", run(sqlite, args.reports, sqlite_counter(sqlite)))
    sqlite.close()
    if args.no_postgres:
        return
    from ecosystem.store.postgres import PostgresStore
    from tests.pgserver import PgServer

    server = PgServer(free_block(1, start=17000))
    server.start()
    try:
        server.add_supabase_roles()
        server.supabase_like_database("bench_report")
        dsn = server.dsn("bench_report")
        if args.latency:
            link = SlowLink(server.port, args.latency / 2000)
            dsn = dsn.replace(f":{server.port}/", f":{link.port}/")
        pg = PostgresStore(dsn)
        pg.migrate()
        fenced(pg)
        show(
            f"postgres, +{args.latency:g} ms a round trip ({ROOT})",
            run(pg, args.reports, pg_counter(pg)),
        )
        pg.close()
    finally:
        server.destroy()


if __name__ == "__main__":
    main()
