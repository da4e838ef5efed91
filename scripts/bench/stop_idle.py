"""Stop everything at N, and N sim runners at rest: one quick command.

Fills a private zapvisor to N sim sessions (one `apply`), measures the runners' and the
manager's CPU at rest while they wait for a scan, scans them all, measures again once
paired, then stops everything and boots again ``--rounds`` times: each stop is timed
from the command to nothing listening on any session port, and split into its phases
(the runners' last reports, the monitor, stopAllProcesses, supervisord's exit, the
ports closing) when run with ``--phases`` (in-process, as `zapvisor shutdown` does it).

    flock /work/team/bench.lock .venv/bin/python scripts/bench/stop_idle.py --sessions 200
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ecosystem.supctl import daemon  # noqa: E402
from ecosystem.supctl.render import MONITOR_PROGRAM  # noqa: E402
from ecosystem.supctl.rpc import Supervisor  # noqa: E402
from scripts.bench import vs_pm2_probe as probe  # noqa: E402
from scripts.bench.freeports import free_block  # noqa: E402
from scripts.bench.vs_pm2_systems import Zapvisor  # noqa: E402

DEADLINE = 180.0


def idle(zv: Zapvisor, what: str, seconds: float, parts: int) -> dict[str, list[float]]:
    """% of one core used by the manager and by the runners over ``parts`` slices."""
    manager, workers = zv.manager_pids(), zv.worker_pids()
    out: dict[str, list[float]] = {"manager": [], "runners": []}
    before = probe.cpu_seconds(manager), probe.cpu_seconds(workers)
    for _ in range(parts):
        t0 = time.monotonic()
        time.sleep(seconds / parts)
        wall = time.monotonic() - t0
        now = probe.cpu_seconds(manager), probe.cpu_seconds(workers)
        out["manager"].append(100 * (now[0] - before[0]) / wall)
        out["runners"].append(100 * (now[1] - before[1]) / wall)
        before = now
    for key, values in out.items():
        print(f"  idle CPU, {key} ({len(workers)} {what}): {_summary(values)} % of a core")
    return out


def stop_command(zv: Zapvisor) -> float:
    """`zapvisor shutdown` until nothing listens on any session port."""
    ports = list(zv.sessions.values())
    t0 = time.monotonic()
    proc = zv.spawn(zv.zv, "shutdown")
    assert proc is not None
    proc.wait(DEADLINE)
    exited = time.monotonic() - t0
    left = probe.wait_all_closed(ports, t0 + DEADLINE)
    took = time.monotonic() - t0
    if proc.returncode != 0 or left:
        raise RuntimeError(f"shutdown exit {proc.returncode}, {left} port(s) still listening")
    print(f"  stop: {took:.2f} s (command {exited:.2f} s)", flush=True)
    return took


def stop_phases(zv: Zapvisor) -> float:
    """What `zapvisor shutdown` does, step by step, each step timed; with the CPU the
    runners spent stopping (supervisord's reaped children's, less what they had used)."""
    ports = list(zv.sessions.values())
    orch = zv.orch
    marks = [("start", time.monotonic())]
    orch._report_stopping()
    marks.append(("last reports", time.monotonic()))
    slow = Supervisor(orch.sup.socket_path, *orch.sup.credentials, timeout=DEADLINE)
    pid = slow.pid()
    slow.stop(MONITOR_PROGRAM)
    marks.append(("monitor stopped", time.monotonic()))
    used = probe.cpu_seconds(zv.worker_pids()) + _children_cpu(pid)
    slow.stop_all(wait=False)
    daemon.wait_all_stopped(slow, marks[0][1] + DEADLINE)
    marks.append(("all stopped", time.monotonic()))
    spent = _children_cpu(pid) - used
    slow.shutdown()
    probe.wait_until(lambda: not daemon._alive(pid), marks[0][1] + DEADLINE, 0.01)
    marks.append(("supervisord gone", time.monotonic()))
    left = probe.wait_all_closed(ports, marks[0][1] + DEADLINE)
    marks.append(("ports closed", time.monotonic()))
    if left:
        raise RuntimeError(f"{left} port(s) still listening")
    steps = ", ".join(f"{n} +{b - a:.2f}" for (_, a), (n, b) in itertools.pairwise(marks))
    took = marks[-1][1] - marks[0][1]
    print(f"  stop: {took:.2f} s ({steps}); runners' CPU stopping {spent:.2f} s", flush=True)
    return took


def _children_cpu(pid: int) -> float:
    """CPU seconds of ``pid``'s children it reaped so far (cutime + cstime)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3, help="stop + boot rounds")
    ap.add_argument("--idle", type=float, default=30.0, help="seconds of each idle window")
    ap.add_argument("--no-idle", action="store_true", help="skip the idle windows")
    ap.add_argument("--first-port", type=int, default=12000, help="lowest port to use")
    ap.add_argument("--phases", action="store_true", help="time each step of the stop")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="zv-stopidle-", dir="/tmp"))
    size = args.sessions + 5
    zv = Zapvisor(root, free_block(size, start=args.first_port), size)
    print(f"load at start {_load()}", flush=True)
    stops: list[float] = []
    try:
        zv.setup()
        t0 = time.monotonic()
        zv.fill(args.sessions)
        print(f"{args.sessions} sim sessions healthy in {time.monotonic() - t0:.1f} s", flush=True)
        if not args.no_idle:
            time.sleep(10)  # settled: the first QR shown, start-up work done
            idle(zv, "waiting for a scan", args.idle, 3)
            print(f"  scanned {zv.scan_all()}", flush=True)
            time.sleep(5)
            idle(zv, "paired", args.idle, 3)
        for _ in range(args.rounds):
            stops.append(stop_phases(zv) if args.phases else stop_command(zv))
            t0 = time.monotonic()
            zv.run(zv.zv, "apply", timeout=DEADLINE * 2)
            probe.wait_all_healthy(zv.sessions.values(), t0 + DEADLINE * 2)
            print(f"  boot: {time.monotonic() - t0:.1f} s", flush=True)
            time.sleep(3)
        print(f"stop everything at {args.sessions}: {_summary(stops)} s")
    finally:
        try:
            zv.close()
        finally:
            shutil.rmtree(root, ignore_errors=True)
        print(f"load at end {_load()}", flush=True)
    return 0


def _summary(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


if __name__ == "__main__":
    raise SystemExit(main())
