"""Failover, measured: three zapvisor hosts on this machine (each its own state dir, host
id, port range, supervisord and health monitor) sharing one PostgreSQL of the bench's
own, with sim sessions whose auth lives in the store.

1. For each size in --sessions: every session on host a, connected; kill -9 every
   process of a; seconds until each of its sessions is connected on b or c with the
   same phone (median, 90th percentile, all of them).
2. --rounds rounds of death, alternating kill -9 and freeze (SIGSTOP; SIGCONT once its
   sessions run elsewhere), each time on the host holding the most sessions: how many
   moments two hosts drove one device (the simulated server's overlaps; the goal is
   0), how many sessions showed a QR again (0), and the seconds each round took.

    .venv/bin/python scripts/bench/failover_bench.py [--sessions 20,100] [--rounds 50]
                                                     [--round-sessions 20] [--lease 6]

Prints figures; never fails on timing (the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ecosystem.lease import AuthKind  # noqa: E402
from ecosystem.models import NewSession, utcnow  # noqa: E402
from ecosystem.orchestrator import Orchestrator  # noqa: E402
from ecosystem.settings import Settings, make_settings  # noqa: E402
from ecosystem.states import Status  # noqa: E402
from ecosystem.store.postgres import PostgresStore  # noqa: E402
from ecosystem.supctl import daemon  # noqa: E402
from scripts.bench.freeports import free_block  # noqa: E402
from tests.failover_hosts import kill_all, process_tree, signal_all, thaw_all  # noqa: E402
from tests.pgserver import PgServer  # noqa: E402

T = TypeVar("T")
HOSTS = ("a", "b", "c")


def wait(predicate: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise SystemExit(f"gave up waiting for {what} after {timeout:g} s")


@dataclass
class BenchHost:
    name: str
    settings: Settings
    orch: Orchestrator
    frozen: list[int] = field(default_factory=list)

    def supervisord_pid(self) -> int | None:
        try:
            return int(self.orch.paths.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def up(self) -> None:
        self.orch.apply()

    def kill(self) -> None:
        kill_all(process_tree(self.supervisord_pid()))

    def freeze(self) -> None:
        procs = process_tree(self.supervisord_pid())
        signal_all(procs, signal.SIGSTOP)
        self.frozen = [p.pid for p in procs]

    def thaw(self) -> None:
        thaw_all(self.frozen)
        self.frozen = []

    def down(self) -> None:
        self.thaw()
        if self.supervisord_pid() is not None:
            try:
                sup = daemon.client(self.orch.paths, timeout=300)
                daemon.shutdown(self.orch.paths, sup, timeout=300)
            except Exception as exc:  # the bench goes on tearing down the others
                print(f"  ({self.name}: shutdown: {exc})")


def make_hosts(dsn: str, root: Path, capacity: int, lease: float) -> dict[str, BenchHost]:
    hosts = {}
    start = 13000
    for name in HOSTS:
        base = free_block(capacity + 5, start=start)
        start = base + capacity + 10
        settings = make_settings(
            home=root / name,
            base_port=base,
            max_sessions=capacity,
            host_id=name,
            database_url=dsn,
            lease_seconds=lease,
            health_interval=1.0,
            health_timeout=2.0,
            failover_ram_floor_mb=0,
            sim_qr_seconds=120,
            start_timeout=120,
        )
        hosts[name] = BenchHost(name, settings, Orchestrator(settings, actor="bench"))
    return hosts


def place(store: PostgresStore, host: BenchHost, names: list[str]) -> None:
    """Sessions on ``host``, already paired (their sim auth in the store)."""
    for name in names:
        host.orch.store.create_session(
            NewSession(name=name, connector="sim", auth=AuthKind.STORE),
            host=host.name,
            ports=host.orch.ports,
            exclude_ports=(),
            max_sessions=host.settings.max_sessions,
            actor="bench",
        )
        store.save_sim_auth(name, f"dev-{name}", "55119" + str(abs(hash(name)) % 10**8).zfill(8))


def connected(store: PostgresStore, names: set[str], away_from: str) -> dict[str, str]:
    return {
        s.name: s.host
        for s in store.list_sessions()
        if s.name in names and s.host != away_from and s.status == Status.CONNECTED
    }


def all_connected(store: PostgresStore, names: list[str]) -> bool:
    return len(connected(store, set(names), "")) == len(names)


def overlaps(store: PostgresStore, since: datetime) -> int:
    links = store.sim_links(None, 100_000)
    return sum(1 for link in links if link.overlap and link.opened_at >= since)


def new_qrs(store: PostgresStore, since: datetime) -> int:
    return sum(
        1
        for e in store.list_events(None, limit=100_000)
        if e.action == "status" and e.to_status == "waiting_scan" and e.ts >= since
    )


def claimed_after(store: PostgresStore, names: set[str], since: datetime) -> dict[str, float]:
    """Seconds from ``since`` to each session's failover claim (the audit trail's time,
    the database's clock on this same machine)."""
    out: dict[str, float] = {}
    for e in store.list_events(None, limit=100_000):
        if e.action == "failover" and e.session_name in names and e.ts >= since:
            out[e.session_name] = (e.ts - since).total_seconds()
    return out


def failover_once(
    store: PostgresStore, victim: BenchHost, how: str, timeout: float
) -> tuple[dict[str, float], int]:
    """Seconds until each of ``victim``'s sessions is connected elsewhere."""
    names = {s.name for s in store.list_sessions(victim.name)}
    t0 = time.monotonic()
    if how == "kill":
        victim.kill()
    else:
        victim.freeze()
    times: dict[str, float] = {}
    deadline = t0 + timeout
    while len(times) < len(names) and time.monotonic() < deadline:
        now = time.monotonic() - t0
        for name in connected(store, names, victim.name):
            times.setdefault(name, now)
        time.sleep(0.2)
    missing = len(names) - len(times)
    if how == "freeze":
        victim.thaw()
    else:
        victim.up()  # it comes back, empty
    return times, missing


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sessions", default="20,100", help="sizes for the timing (comma separated)")
    ap.add_argument("--rounds", type=int, default=50, help="kill/freeze rounds (0: none)")
    ap.add_argument("--round-sessions", type=int, default=20, help="sessions during the rounds")
    ap.add_argument("--lease", type=float, default=6.0, help="ZAPVISOR_LEASE_SECONDS")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sessions.split(",") if x.strip()]
    capacity = max([*sizes, args.round_sessions]) + 5
    root = Path(tempfile.mkdtemp(prefix="zv-bench-failover-", dir="/tmp"))
    server = PgServer(free_block(1, start=12500), max_connections=4 * capacity + 100)
    server.start()
    server.add_supabase_roles()
    server.supabase_like_database("bench")
    dsn = server.dsn("bench")
    store = PostgresStore(dsn)
    store.migrate()
    hosts = make_hosts(dsn, root, capacity, args.lease)
    print(
        f"3 hosts on this machine, lease {args.lease:g} s, health check every 1 s, "
        f"start concurrency {hosts['a'].settings.start_concurrency}; state in {root}"
    )
    timeout = 60 + 3 * max([*sizes, args.round_sessions])
    try:
        for h in hosts.values():
            h.up()
        for n in sizes:
            names = [f"s{n}-{i:03d}" for i in range(n)]
            place(store, hosts["a"], names)
            hosts["a"].up()
            wait(partial(all_connected, store, names), timeout, f"{n} sessions connected on a")
            since = utcnow()
            back, missing = failover_once(store, hosts["a"], "kill", timeout)
            claimed = claimed_after(store, set(names), since)
            times = sorted(back.values())
            claims = sorted(claimed.values())
            starts = sorted(back[n] - claimed[n] for n in back if n in claimed)
            spread = {h: len(store.list_sessions(h)) for h in ("b", "c")}
            print(
                f"kill -9 of a host with {n} sessions: all connected elsewhere in "
                f"{pct(times, 1.0):.1f} s (median {pct(times, 0.5):.1f} s, "
                f"p90 {pct(times, 0.9):.1f} s); {missing} not back; now on b/c: "
                f"{spread['b']}/{spread['c']}; overlaps {overlaps(store, since)}, new QRs "
                f"{new_qrs(store, since)}"
            )
            print(
                f"  claim: {len(claims)} claims {pct(claims, 0.0):.1f}-{pct(claims, 1.0):.1f} s "
                f"after the kill (median {pct(claims, 0.5):.1f} s; lease {args.lease:g} s, "
                f"one check a second)"
            )
            print(
                f"  start: claim to connected median {pct(starts, 0.5):.1f} s, p90 "
                f"{pct(starts, 0.9):.1f} s, worst {pct(starts, 1.0):.1f} s (supervisord starting "
                "the runner, its lease, its first connection)"
            )
            for name in names:
                store.delete_session(name, actor="bench")
            for h in hosts.values():
                h.orch.apply()
        if args.rounds:
            names = [f"r-{i:03d}" for i in range(args.round_sessions)]
            place(store, hosts["a"], names)
            hosts["a"].up()
            wait(lambda: all_connected(store, names), timeout, "the round sessions connected")
            since = utcnow()
            took: list[float] = []
            lost = 0
            for i in range(args.rounds):
                victim = max(hosts.values(), key=lambda h: len(store.list_sessions(h.name)))
                how = "kill" if i % 2 == 0 else "freeze"
                back, missing = failover_once(store, victim, how, timeout)
                took.append(max(back.values()) if back else float("nan"))
                lost += missing
                # the next round starts from a fleet where everything runs
                wait(lambda: all_connected(store, names), timeout, "every session connected again")
            print(
                f"{args.rounds} rounds (kill -9 and freeze alternating, {args.round_sessions} "
                f"sessions): double-owner moments {overlaps(store, since)}, new QRs "
                f"{new_qrs(store, since)}, sessions not back in time {lost}; all back in "
                f"median {statistics.median(took):.1f} s, worst {max(took):.1f} s"
            )
    finally:
        for h in hosts.values():
            h.down()
        store.close()
        server.destroy()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
