"""zapvisor against PM2 and a plain supervisord, side by side, in one run.

    .venv/bin/python scripts/bench/vs_pm2.py [--levels 0,50,200] [--rounds 3] [--idle 30]
                                             [--neonize 20] [--no-tui] [--no-boot]

PM2 (installed with npm into ~/.cache/zapvisor-bench when missing) and a plain
supervisord run a small Python asyncio worker that answers /health
(scripts/bench/health_worker.py); zapvisor runs its sim runner. At each level N every
system first holds N sessions, then each row is measured round after round, the
systems interleaved (zapvisor, PM2, supervisord, zapvisor, …), so a burst of load on
this shared machine hits all three alike:

- add one → its /health answers (zapvisor `create`, `pm2 start`, XML-RPC add);
- restart one → /health answers with a new pid;
- list: `zapvisor list --json`, `pm2 jlist`, `supervisorctl status` (process exit);
- at the top level: idle CPU of each manager and of its workers (waiting for a scan,
  then paired), PSS of a worker and of each manager, the terminal app
  (scripts/bench/tui_bench.py) and neonize runners' PSS and idle CPU;
- stop everything (command exit, nothing left listening) and boot from nothing until
  every worker answers /health (`zapvisor apply` and `zapvisor serve`, `pm2 resurrect`,
  supervisord with autostart).

Prints each median with its range and the ratio to PM2, and the load average at start
and end. Private dirs and ports below 32768; everything started is stopped at the end.
Figures only: nothing fails on timing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from scripts.bench import vs_pm2_probe as probe  # noqa: E402
from scripts.bench.freeports import free_block  # noqa: E402
from scripts.bench.vs_pm2_others import PM2, PlainSupervisord, install_pm2  # noqa: E402
from scripts.bench.vs_pm2_systems import Started, System, Zapvisor  # noqa: E402

DEADLINE = 180.0
Results = dict[str, dict[str, list[float]]]


class Bench:
    def __init__(self, args: argparse.Namespace, root: Path) -> None:
        self.args = args
        self.levels = sorted(int(x) for x in args.levels.split(","))
        self.top = max(self.levels)
        size = self.top + 20 + args.neonize
        base = free_block(3 * size)
        self.zv = Zapvisor(root / "zapvisor", base, size)
        self.pm2 = PM2(root / "pm2", base + size, size)
        self.sd = PlainSupervisord(root / "supervisord", base + 2 * size, size)
        self.systems: list[System] = [self.zv, self.pm2, self.sd]
        self.results: Results = {}
        self.rows: list[str] = []

    def record(self, row: str, system: System, value: float) -> None:
        if row not in self.results:
            self.results[row] = {}
            self.rows.append(row)
        self.results[row].setdefault(system.label, []).append(value)
        unit = "%" if "CPU" in row else "MB" if "PSS" in row else "ms" if "tick" in row else "s"
        print(f"  {row:<44} {system.label:<12} {value:8.3f} {unit}", flush=True)

    def attempt(self, row: str, system: System, measure: Callable[[], float]) -> None:
        try:
            self.record(row, system, measure())
        except Exception as exc:
            print(f"  {row:<44} {system.label:<12} FAILED: {exc!r}", flush=True)

    # -- one action, timed ----------------------------------------------------------

    @staticmethod
    def finish(started: Started, deadline: float) -> None:
        if started is None:
            return
        code = started.wait(timeout=max(1.0, deadline - time.monotonic()))
        err = started.stderr.read().decode(errors="replace").strip() if started.stderr else ""
        if code != 0:
            raise RuntimeError(f"exit {code}: {err[-300:]}")

    def time_add(self, system: System, name: str) -> float:
        port = system.next_port()
        t0 = time.monotonic()
        deadline = t0 + DEADLINE
        started = system.add(name, port)
        probe.wait_health(port, deadline)
        took = time.monotonic() - t0
        self.finish(started, deadline)
        return took

    def time_restart(self, system: System, name: str) -> float:
        port = system.sessions[name]
        old = probe.health_pid(port)
        t0 = time.monotonic()
        deadline = t0 + DEADLINE
        started = system.restart(name)
        probe.wait_health(port, deadline, not_pid=old)
        took = time.monotonic() - t0
        self.finish(started, deadline)
        return took

    def time_list(self, system: System) -> float:
        t0 = time.monotonic()
        done = system.run(*system.list_command())
        took = time.monotonic() - t0
        count = system.list_count(done.stdout)
        if count != len(system.sessions):
            raise RuntimeError(f"listed {count}, expected {len(system.sessions)}")
        return took

    def time_stop(self, system: System) -> float:
        ports = list(system.sessions.values())
        t0 = time.monotonic()
        deadline = t0 + DEADLINE
        started = system.stop_all()
        self.finish(started, deadline)
        left = probe.wait_all_closed(ports, deadline)
        took = time.monotonic() - t0
        if left:
            raise RuntimeError(f"{left} port(s) still listening after {took:.1f} s")
        return took

    def time_boot(self, system: System, mode: str = "") -> float:
        t0 = time.monotonic()
        deadline = t0 + DEADLINE * 2
        started = system.boot(mode)
        probe.wait_all_healthy(system.sessions.values(), deadline)
        took = time.monotonic() - t0
        self.finish(started, deadline)
        return took

    # -- the run ----------------------------------------------------------------------

    def levels_pass(self) -> None:
        for level in self.levels:
            print(f"\n== N = {level}: filling each system to {level} sessions", flush=True)
            for system in self.systems:
                t0 = time.monotonic()
                system.fill(level)
                print(f"  {system.label}: {level} running ({time.monotonic() - t0:.1f} s)")
            for r in range(self.args.rounds):
                name = f"probe-{level}-{r}"
                add, restart = f"add one → /health, N={level}", f"restart one → /health, N={level}"
                for s in self.systems:
                    self.attempt(add, s, partial(self.time_add, s, name))
                for s in self.systems:
                    self.attempt(restart, s, partial(self.time_restart, s, name))
                for s in self.systems:
                    self.attempt(f"list, {level + 1} sessions", s, partial(self.time_list, s))
                if level == self.levels[0] and r == 0:
                    time.sleep(3)  # settled: the first QR shown, start-up garbage gone
                    for s in self.systems:
                        pss = probe.pss_mb(probe.health_pid(s.sessions[name]) or 0)
                        if pss is not None:
                            self.record(f"PSS, one idle session alone (N={level})", s, pss)
                for s in self.systems:
                    try:
                        s.delete(name)
                    except Exception as exc:
                        print(f"  delete {name} on {s.label} failed: {exc!r}")

    def idle_window(self, what: str, seconds: float, parts: int) -> None:
        """CPU of each manager and of its workers over ``seconds``, as ``parts`` slices
        (the median and range are over the slices)."""
        groups = [(s, s.manager_pids(), s.worker_pids()) for s in self.systems]
        slice_s = seconds / parts
        before = [(probe.cpu_seconds(m), probe.cpu_seconds(w)) for _s, m, w in groups]
        for _ in range(parts):
            t0 = time.monotonic()
            time.sleep(slice_s)
            wall = time.monotonic() - t0
            now = [(probe.cpu_seconds(m), probe.cpu_seconds(w)) for _s, m, w in groups]
            for (s, _m, w), (m0, w0), (m1, w1) in zip(groups, before, now, strict=True):
                self.record(f"idle CPU, manager ({what})", s, 100 * (m1 - m0) / wall)
                self.record(f"idle CPU, {len(w)} workers {what}", s, 100 * (w1 - w0) / wall)
            before = now

    def top_pass(self) -> None:
        print(f"\n== at rest with {self.top} sessions", flush=True)
        time.sleep(10)
        parts = max(3, self.args.rounds)
        self.idle_window("waiting for a scan", self.args.idle, parts)
        for s in self.systems:
            self.record(
                f"PSS, manager ({self.top} sessions)",
                s,
                sum(probe.pss_mb(p) or 0.0 for p in s.manager_pids()),
            )
            pss = probe.median_pss(s.worker_pids())
            if pss is not None:
                self.record(f"PSS, one of {self.top} idle sessions (median)", s, pss)
            # the sum is what the host gives: it holds whatever the processes share
            every = [*s.manager_pids(), *s.worker_pids()]
            self.record(
                f"PSS, everything ({self.top} sessions)",
                s,
                sum(probe.pss_mb(p) or 0.0 for p in every),
            )
        print(f"  scanned {self.zv.scan_all()} zapvisor sessions", flush=True)
        time.sleep(5)
        self.idle_window("paired", self.args.idle, parts)

    def tui_pass(self) -> None:
        from scripts.bench.tui_bench import run_app

        print(f"\n== the terminal app at {self.top} sessions", flush=True)
        for r in range(self.args.rounds):
            out = self.zv.root / f"tui-{r}.json"
            try:
                figures, _drawn = run_app(self.zv.env(), out, len(self.zv.sessions), 10.0)
            except BaseException as exc:  # run_app raises SystemExit on failure
                print(f"  the app failed: {exc!r}")
                continue
            self.record(f"TUI start → {self.top} rows", self.zv, figures["table_s"])
            self.record("TUI tick (worker)", self.zv, 1000 * statistics.median(figures["ticks"]))
            applied = 1000 * statistics.median(figures["applies"])
            self.record("TUI tick applied (UI thread)", self.zv, applied)
            self.record("TUI idle CPU", self.zv, figures["idle_cpu_percent"])

    def neonize_pass(self, count: int) -> None:
        print(f"\n== {count} neonize runners (offline: no route to WhatsApp)", flush=True)
        names = self.zv.add_connector(count, "neonize", "neo")
        time.sleep(10)
        pids = self.zv.worker_pids(set(names))
        for pid in pids:
            pss = probe.pss_mb(pid)
            if pss is not None:
                self.record(f"PSS, a neonize runner ({len(pids)} running)", self.zv, pss)
        slice_s = self.args.idle / 3
        before = probe.cpu_seconds(pids)
        for _ in range(3):
            t0 = time.monotonic()
            time.sleep(slice_s)
            now = probe.cpu_seconds(pids)
            self.record(
                f"idle CPU, {len(pids)} neonize runners",
                self.zv,
                100 * (now - before) / (time.monotonic() - t0),
            )
            before = now
        for name in names:
            self.zv.orch.delete(name, purge=True)

    def stop_boot_pass(self) -> None:
        print(f"\n== stop everything and boot from nothing, {self.top} sessions", flush=True)
        stop_row = f"stop everything at {self.top}"
        for _r in range(self.args.rounds):
            for s in self.systems:
                self.attempt(stop_row, s, partial(self.time_stop, s))
            for s in self.systems:
                row = f"boot → {self.top} healthy (zapvisor: apply)"
                self.attempt(row, s, partial(self.time_boot, s, "apply"))
            self.attempt(stop_row, self.zv, lambda: self.time_stop(self.zv))
            serve = f"boot → {self.top} healthy (serve)"
            self.attempt(serve, self.zv, lambda: self.time_boot(self.zv, "serve"))

    def close(self) -> None:
        for s in self.systems:
            try:
                s.close()
            except Exception as exc:
                print(f"closing {s.label}: {exc!r}")

    # -- the table --------------------------------------------------------------------

    def table(self) -> str:
        labels = [s.label for s in self.systems]
        lines = [
            "| measure | " + " | ".join(labels) + " | zapvisor / PM2 |",
            "| --- |" + " --- |" * (len(labels) + 1),
        ]
        for row in self.rows:
            cells, medians = [], {}
            for label in labels:
                values = self.results[row].get(label)
                if not values:
                    cells.append("")
                    continue
                med = statistics.median(values)
                medians[label] = med
                cells.append(f"{_fmt(med)} ({_fmt(min(values))}-{_fmt(max(values))})")
            ratio = ""
            if medians.get("PM2") and "zapvisor" in medians:
                ratio = f"{medians['zapvisor'] / medians['PM2']:.2f}x"
            lines.append(f"| {row} | " + " | ".join(cells) + f" | {ratio} |")
        return "\n".join(lines)


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--levels", default="0,50,200", help="sessions present (N)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds per measure")
    ap.add_argument("--idle", type=float, default=30.0, help="seconds of each idle window")
    ap.add_argument("--neonize", type=int, default=20, help="neonize runners (0: skip)")
    ap.add_argument("--no-tui", action="store_true", help="skip the terminal app")
    ap.add_argument("--no-boot", action="store_true", help="skip stop everything / boot")
    args = ap.parse_args()
    install_pm2()
    root = Path(tempfile.mkdtemp(prefix="zv-vs-pm2-", dir="/tmp"))
    started_load, t_start = load(), time.monotonic()
    print(f"load average at start: {started_load}; {os.cpu_count()} cpus; dirs in {root}")
    bench = Bench(args, root)
    passes: list[Callable[[], None]] = [bench.levels_pass, bench.top_pass]
    if not args.no_tui:
        passes.append(bench.tui_pass)
    if args.neonize:
        passes.append(partial(bench.neonize_pass, args.neonize))
    if not args.no_boot:
        passes.append(bench.stop_boot_pass)
    try:
        for s in bench.systems:
            s.setup()
        for one in passes:  # one pass failing (a loaded host) leaves the others
            try:
                one()
            except Exception:
                traceback.print_exc()
    except BaseException:
        traceback.print_exc()
    finally:
        bench.close()
        shutil.rmtree(root, ignore_errors=True)
    minutes = (time.monotonic() - t_start) / 60
    print(f"\nmedian (min-max) over {args.rounds} interleaved rounds; seconds unless stated")
    print("(CPU in % of one core, PSS in MB, TUI ticks in ms)\n")
    print(bench.table())
    print(f"\nload average at start: {started_load}; at end: {load()}; run took {minutes:.1f} min")


if __name__ == "__main__":
    main()
