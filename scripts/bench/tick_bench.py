"""One live-view refresh tick (what the terminal app's worker runs every second) at N
sessions, reading supervisord's process table both ways in one run, interleaved:
getAllProcessInfo (XML-RPC structs, what zapvisor read before) and zapvisor.processes
(one compact JSON string, ecosystem/supctl/rpcext.py).

    .venv/bin/python scripts/bench/tick_bench.py [--sessions 200] [--rounds 40] [--profile]

The sessions are in a private SQLite store as `create` inserts them; their programs
in supervisord run `sleep` instead of a runner, so the bench costs the machine little:
the tick's work (2 store queries, the process table, one psutil pass over the pids) is
the same. Prints the tick's wall time, the CPU it costs this process and supervisord;
`--profile` adds the top of a cProfile of each. Figures only: the machine is shared
and noisy, compare the two columns of one run.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ecosystem import apitoken  # noqa: E402
from ecosystem.liveview import Poller  # noqa: E402
from ecosystem.models import NewSession  # noqa: E402
from ecosystem.orchestrator import Orchestrator  # noqa: E402
from ecosystem.settings import make_settings  # noqa: E402
from ecosystem.supctl import daemon, render  # noqa: E402
from ecosystem.supctl.rpc import ProcessInfo, Supervisor  # noqa: E402
from scripts.bench.freeports import free_block  # noqa: E402

compact_table = Supervisor.all_process_info


def xml_table(self: Supervisor) -> dict[str, ProcessInfo]:
    """What zapvisor read before zapvisor.processes."""
    return {i["name"]: ProcessInfo.from_rpc(i) for i in self.call("getAllProcessInfo")}


MODES: dict[str, Callable[[Supervisor], dict[str, ProcessInfo]]] = {
    "getAllProcessInfo": xml_table,
    "zapvisor.processes": compact_table,
}


def populate(orch: Orchestrator, count: int) -> None:
    """``count`` sessions in the store, their programs running `sleep` in supervisord."""
    s = orch.settings
    names = [f"bench-{i:03d}" for i in range(count)]
    for name in names:
        orch.store.create_session(
            NewSession(name=name, connector="sim"),
            host=s.host_id,
            ports=orch.ports,
            exclude_ports=set(),
            max_sessions=s.max_sessions,
            actor="bench",
            api_token_hash=apitoken.hash_token(apitoken.new_token()),
        )
    paths = orch.paths
    paths.ensure()
    creds = daemon.credentials(paths)
    specs = [
        render.ProgramSpec(
            name=name,
            port=s.base_port + i,
            command="sleep 3600",
            stdout_log=paths.stdout_log(name),
            stderr_log=paths.stderr_log(name),
        )
        for i, name in enumerate(names)
    ]
    text = render.render(
        paths,
        username=creds.username,
        password=creds.password,
        programs=specs,
        max_sessions=s.max_sessions,
    )
    render.check(text)
    paths.conf.write_text(text)
    paths.conf.chmod(0o600)
    daemon.start(paths, orch.sup)
    for spec in specs:
        orch.sup.start(spec.program)


def measure(poller: Poller, sup_proc: psutil.Process, mode: str) -> tuple[float, float, float]:
    """One tick read the ``mode`` way: (wall ms, this process's CPU ms, supervisord's)."""
    Supervisor.all_process_info = MODES[mode]  # type: ignore[method-assign,assignment]
    sup_cpu = sum(sup_proc.cpu_times()[:2])
    own = time.process_time()
    t0 = time.perf_counter()
    poller.tick()
    wall = time.perf_counter() - t0
    own = time.process_time() - own
    sup_cpu = sum(sup_proc.cpu_times()[:2]) - sup_cpu
    return wall * 1000, own * 1000, sup_cpu * 1000


def profile(poller: Poller, mode: str, ticks: int) -> str:
    Supervisor.all_process_info = MODES[mode]  # type: ignore[method-assign,assignment]
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(ticks):
        poller.tick()
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(18)
    return out.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=40, help="ticks per mode")
    ap.add_argument("--profile", action="store_true", help="cProfile 10 ticks of each")
    args = ap.parse_args()
    count = args.sessions
    base = free_block(count + 10, start=12000)
    home = Path(tempfile.mkdtemp(prefix="zv-tick-bench-", dir="/tmp")) / "home"
    settings = make_settings(home=home, base_port=base, max_sessions=count + 10)
    orch = Orchestrator(settings)
    print(f"state dir {home}, {count} sessions, {os.cpu_count()} cpus")
    try:
        populate(orch, count)
        sup_proc = psutil.Process(orch.sup.pid())
        poller = Poller(orch)
        for mode in MODES:  # warm both: the psutil objects, the store, the socket
            measure(poller, sup_proc, mode)
            measure(poller, sup_proc, mode)
        figures: dict[str, list[tuple[float, float, float]]] = {m: [] for m in MODES}
        for _ in range(args.rounds):
            for mode in MODES:
                figures[mode].append(measure(poller, sup_proc, mode))
        # supervisord's CPU is counted in clock ticks (10 ms): its mean, not a median
        print(f"{args.rounds} ticks each, ms | wall median | CPU here median | supervisord mean")
        for mode, rows in figures.items():
            wall, own, sup = zip(*rows, strict=True)
            print(
                f"  {mode:<20} | {statistics.median(wall):7.1f} | "
                f"{statistics.median(own):7.1f} | {statistics.mean(sup):7.1f}"
            )
        if args.profile:
            for mode in MODES:
                print(f"--- cProfile, 10 ticks, {mode}")
                print(profile(poller, mode, 10))
    finally:
        Supervisor.all_process_info = compact_table  # type: ignore[method-assign]
        daemon.shutdown(orch.paths, daemon.client(orch.paths, timeout=120), timeout=120)
        orch.close()
        shutil.rmtree(home.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
