"""A fleet of 4 hosts x 50 sim sessions: the cost of one terminal-app refresh tick, a
create → /health on another host beside one on this host, and how long a host that
stops answering takes to show as unreachable.

    .venv/bin/python scripts/bench/fleet_bench.py [--hosts 4] [--sessions 50] [--ssh]

Each host is a private zapvisor installation (state dir, port block, host id, its own
supervisord) sharing one real PostgreSQL started here. By default the other hosts are
reached through the real `zapvisor agent --stdio` on local pipes (what the link costs
without the SSH transport); the figures are printed, nothing fails on timing: the
machine is shared and noisy, compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ecosystem import apitoken  # noqa: E402
from ecosystem.liveview import Poller  # noqa: E402
from ecosystem.models import NewSession  # noqa: E402
from ecosystem.orchestrator import Orchestrator  # noqa: E402
from ecosystem.ports import busy_ports  # noqa: E402
from ecosystem.store.postgres import PostgresStore  # noqa: E402
from tests.conftest import Env, free_port_block, teardown_env  # noqa: E402
from tests.fleet_local import LocalFleet  # noqa: E402
from tests.pgserver import PgServer  # noqa: E402


def populate(orch: Orchestrator, host: str, base: int, count: int) -> None:
    """``count`` sim sessions of ``host`` in the store, as `create` inserts them."""
    ports = range(base, base + count + 10)
    busy = busy_ports(ports, "127.0.0.1")
    for i in range(count):
        orch.store.create_session(
            NewSession(name=f"{host}-{i:03d}", connector="sim"),
            host=host,
            ports=ports,
            exclude_ports=busy,
            max_sessions=count + 10,
            actor="bench",
            api_token_hash=apitoken.hash_token(apitoken.new_token()),
        )


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--ticks", type=int, default=15)
    parser.add_argument("--creates", type=int, default=3)
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # figures as they come

    top = Path(tempfile.mkdtemp(prefix="zv-fleet-bench-"))
    pg = PgServer(free_port_block(1))
    envs: list[Env] = []
    fleet: LocalFleet | None = None
    try:
        pg.start()
        dsn = pg.dsn()
        store = PostgresStore(dsn)
        store.migrate()
        store.close()
        size = args.sessions + 10
        for i in range(args.hosts):
            name = f"host-{chr(ord('a') + i)}"
            home = top / name / "home"
            env = Env(home, free_port_block(size), size)
            env.extra = {
                "ZAPVISOR_DATABASE_URL": dsn,
                "ZAPVISOR_HOST_ID": name,
                # a loaded 2-core machine starts 200 runners slowly: give them time
                "ZAPVISOR_START_TIMEOUT": "120",
            }
            envs.append(env)
        local, remotes = envs[0], {e.extra["ZAPVISOR_HOST_ID"]: e for e in envs[1:]}
        fleet = LocalFleet(dsn, local, "host-a", remotes)
        orch = fleet.orchestrator(start_timeout=120)
        hosts = orch.fleet_hosts()
        t0 = time.perf_counter()
        for env in envs:
            host = env.extra["ZAPVISOR_HOST_ID"]
            populate(orch, host, env.base_port, args.sessions)
        assert orch.links is not None
        links = orch.links
        # every host starts its runners at once, as their operators' boots would
        with concurrent.futures.ThreadPoolExecutor(len(hosts)) as pool:
            applies = [pool.submit(orch.apply)] + [
                pool.submit(links.call, host, "apply", {}, timeout=1800) for host in hosts[1:]
            ]
            for done in applies:
                done.result()
        print(
            f"{len(hosts)} hosts x {args.sessions} sim sessions started in "
            f"{time.perf_counter() - t0:.1f} s"
        )

        poller = Poller(orch)
        poller.tick()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            snap = poller.tick()
            if sum(v.process_state == "RUNNING" for v in snap.views) == len(snap.views):
                break
            time.sleep(1)
        before = dict(orch.links.calls)
        ticks = []
        for _ in range(args.ticks):
            t = time.perf_counter()
            snap = poller.tick()
            ticks.append(time.perf_counter() - t)
            time.sleep(0.2)
        per_tick = {
            h: (orch.links.calls[(h, "host_report")] - before.get((h, "host_report"), 0))
            / args.ticks
            for h in hosts[1:]
        }
        running = sum(v.process_state == "RUNNING" for v in snap.views)
        print(
            f"refresh tick, {len(snap.views)} sessions ({running} RUNNING) on "
            f"{len(hosts)} hosts: median {statistics.median(ticks) * 1000:.0f} ms, "
            f"max {max(ticks) * 1000:.0f} ms; host_report calls per remote host per tick: "
            + ", ".join(f"{h} {n:.2f}" for h, n in per_tick.items())
        )
        agents = {h: len(p) for h, p in fleet.agents.items()}
        print(f"agent processes started per remote host over the whole run: {agents}")

        for where in ("host-a", hosts[1]):
            took = []
            for i in range(args.creates):
                name = f"probe-{where}-{i}"
                t = time.perf_counter()
                view = orch.create(NewSession(name=name, connector="sim"), host=where)
                while not healthy(view.session.port):
                    time.sleep(0.005)
                took.append(time.perf_counter() - t)
                orch.delete(name)
            print(
                f"create → /health on {where} "
                f"({'this host' if where == 'host-a' else 'through its agent'}): "
                f"median {statistics.median(took):.2f} s of {args.creates}"
            )

        silent = hosts[-1]
        fleet.down.add(silent)
        pid = fleet.agents[silent][-1]
        os.kill(pid, signal.SIGSTOP)
        t = time.monotonic()
        while True:
            snap = poller.tick()
            if not snap.hosts[silent].reachable:
                break
            time.sleep(0.25)
        print(
            f"{silent} stops answering → its rows unreachable after "
            f"{time.monotonic() - t:.1f} s (the other hosts' ticks kept going)"
        )
        os.kill(pid, signal.SIGCONT)
        fleet.down.discard(silent)
    finally:
        if fleet is not None:
            fleet.close()
        for env in envs:
            teardown_env(env)
        pg.destroy()
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
