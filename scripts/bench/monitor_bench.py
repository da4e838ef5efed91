"""The health monitor at scale: its CPU per check and memory with N sim sessions, how
long a boot of N sessions takes (staggered), and how long from a runner's hang (SIGSTOP)
or crash (SIGKILL) to a healthy replacement.

    .venv/bin/python scripts/bench/monitor_bench.py [--sessions 200] [--interval 5]
                                                    [--checks 6] [--hangs 3]

Uses a private state dir and port block, default health settings unless given, and
stops the supervisord it started. Prints figures; never fails on timing (the machine
is shared and noisy).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ecosystem.health import status as monitor_status  # noqa: E402
from ecosystem.health.probe import OK, probe_many  # noqa: E402
from ecosystem.models import NewSession  # noqa: E402
from ecosystem.names import program_name  # noqa: E402
from ecosystem.orchestrator import Orchestrator  # noqa: E402
from ecosystem.ports import busy_ports  # noqa: E402
from ecosystem.settings import make_settings  # noqa: E402
from ecosystem.supctl import daemon  # noqa: E402
from ecosystem.supctl.render import MONITOR_PROGRAM  # noqa: E402
from scripts.bench.freeports import free_block  # noqa: E402

T = TypeVar("T")


def wait(predicate: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise SystemExit(f"gave up waiting for {what} after {timeout:g} s")


def cpu_seconds(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return float(t.user + t.system)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--interval", type=float, default=5.0, help="ZAPVISOR_HEALTH_INTERVAL")
    ap.add_argument("--checks", type=int, default=6, help="checks to average CPU over")
    ap.add_argument("--hangs", type=int, default=3, help="hang → restart runs")
    args = ap.parse_args()
    n = args.sessions
    # below the ephemeral range, where a probe of a port nobody listens on yet can
    # connect to itself
    base = free_block(n + 20, start=12000)
    home = Path(tempfile.mkdtemp(prefix="zv-bench-", dir="/tmp")) / "home"
    settings = make_settings(
        home=home, base_port=base, max_sessions=n + 20, health_interval=args.interval
    )
    orch = Orchestrator(settings)
    names = [f"s{i:03d}" for i in range(n)]
    print(f"state dir {home}, ports from {base}, {os.cpu_count()} cpus, {n} sim sessions")
    print(
        f"health: every {settings.health_interval:g} s, hung after {settings.health_failures}"
        f" failed checks of {settings.health_timeout:g} s, "
        f"start concurrency {settings.start_concurrency}"
    )
    try:
        orch.paths.ensure()
        busy = busy_ports(orch.ports, settings.bind)  # the machine is shared
        for name in names:
            orch.store.create_session(
                NewSession(name=name, connector="sim"),
                host=settings.host_id,
                ports=orch.ports,
                exclude_ports=busy,
                max_sessions=settings.max_sessions,
                actor="bench",
            )
        ports = {s.name: s.port for s in orch.store.list_sessions(settings.host_id)}

        t0 = time.perf_counter()
        orch.apply()  # supervisord was down: it starts, and the sessions in waves

        def settled() -> bool:
            # healthy, or parked (a port another process took meanwhile: shared machine)
            parked = {s.name for s in orch.store.list_sessions() if s.desired_state != "running"}
            todo = {k: v for k, v in ports.items() if k not in parked}
            return all(r == OK for r in probe_many(settings.bind, todo, 2.0).values())

        wait(settled, 900, "every runner healthy")
        boot = time.perf_counter() - t0
        up = [s.name for s in orch.store.list_sessions() if s.desired_state == "running"]
        print(f"boot: supervisord + {len(up)} sessions healthy in {boot:.1f} s ({n / boot:.1f}/s)")
        if len(up) < n:
            print(f"  ({n - len(up)} parked: their port was taken by another process)")
        names = up
        n = len(up)

        mon = wait(lambda: orch.sup.process_info(MONITOR_PROGRAM), 30, "the monitor")
        assert mon.pid, "supervisord started the monitor with the sessions"
        sup_pid = orch.sup.pid()

        def checks() -> int:
            return int((monitor_status.read(orch.paths) or {}).get("checks", 0))

        start_checks = checks()
        wait(lambda: checks() >= start_checks + 2, 60 + 3 * args.interval, "two checks")
        c0, m0, s0, t0 = checks(), cpu_seconds(mon.pid), cpu_seconds(sup_pid), time.perf_counter()
        wait(lambda: checks() >= c0 + args.checks, 60 + args.checks * args.interval * 3, "checks")
        c1, m1, s1, t1 = checks(), cpu_seconds(mon.pid), cpu_seconds(sup_pid), time.perf_counter()
        done = c1 - c0
        status = monitor_status.read(orch.paths) or {}
        info = psutil.Process(mon.pid).memory_full_info()
        print(
            f"monitor CPU per check: {1000 * (m1 - m0) / done:.1f} ms "
            f"(wall {status.get('last_check_ms')} ms for the last one; {done} checks)"
        )
        print(
            f"monitor CPU share: {100 * (m1 - m0) / (t1 - t0):.2f}% of one core; "
            f"supervisord's (answering it and everything else): {100 * (s1 - s0) / (t1 - t0):.2f}%"
        )
        print(f"monitor memory: RSS {info.rss / 2**20:.1f} MB, PSS {info.pss / 2**20:.1f} MB")

        hang_times: list[float] = []
        crash_times: list[float] = []
        for i in range(args.hangs):
            for sig, out in ((signal.SIGSTOP, hang_times), (signal.SIGKILL, crash_times)):
                name = names[(i * 37 + (sig == signal.SIGKILL) * 11) % n]
                running = orch.sup.process_info(program_name(name))
                assert running is not None and running.pid, f"{name} is up, so it has a pid"
                old = running.pid
                t0 = time.perf_counter()
                os.kill(old, sig)

                def replaced(name: str = name, old: int | None = old) -> bool:
                    info = orch.sup.process_info(program_name(name))
                    if info is None or info.pid in (None, old) or info.state != "RUNNING":
                        return False
                    return probe_many(settings.bind, {name: ports[name]}, 1.0)[name] == OK

                wait(replaced, 120, f"{name} back after {sig.name}")
                out.append(time.perf_counter() - t0)
        # a hung probe makes its check last the probe timeout
        spacing = max(settings.health_interval, settings.health_timeout)
        bound = settings.health_failures * spacing + settings.health_timeout
        if hang_times:
            hangs = ", ".join(f"{t:.1f}" for t in hang_times)
            crashes = ", ".join(f"{t:.2f}" for t in crash_times)
            print(
                f"hang (SIGSTOP) → healthy replacement: median "
                f"{statistics.median(hang_times):.1f} s ({hangs}); detection alone takes up "
                f"to {bound:g} s ({settings.health_failures} failed checks)"
            )
            print(
                f"crash (SIGKILL) → healthy replacement: median "
                f"{statistics.median(crash_times):.2f} s ({crashes})"
            )
    finally:
        t0 = time.perf_counter()
        # stopping every runner at once can take longer than the default RPC timeout
        daemon.shutdown(orch.paths, daemon.client(orch.paths, timeout=300), timeout=300)
        print(f"shutdown: {time.perf_counter() - t0:.1f} s")
        orch.close()
        shutil.rmtree(home.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
