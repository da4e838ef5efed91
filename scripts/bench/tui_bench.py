"""The terminal app at 200 sim sessions: time from process start to the table showing
every row, the cost of one refresh tick, and the app's CPU while it sits idle on the
sessions screen.

    .venv/bin/python scripts/bench/tui_bench.py [--sessions 200] [--idle 20] [--profile]

The app runs as its own process on a real pseudo-terminal (80x24), drawing for real;
this script reads (and counts) what it draws. The app's process imports what
`zapvisor` would (the app, the settings, the fleet's door) and nothing of this script's
set-up. Start is split in phases (imports, settings and door, first frame, first tick,
all rows drawn); a tick is measured both as the handler that applies it and as the UI
thread's whole CPU per tick while idle (the handler, the table's rendering, the
compositor). `--profile` adds the top of a cProfile of the UI thread over the idle
window. A private state dir and port block are used, and the supervisord started here
is stopped at the end. Figures only: the machine is shared and noisy, nothing fails on
timing.
"""

from __future__ import annotations

import argparse
import cProfile
import fcntl
import json
import os
import pstats
import pty
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from ecosystem.orchestrator import Orchestrator

SIZE = (80, 24)
PHASES = (
    ("import_s", "imports done (the app, textual, the core)"),
    ("orch_s", "settings read, the door to the host made"),
    ("mount_s", "the app mounted (first frame: the empty table)"),
    ("snapshot_s", "first tick's data on the UI thread"),
    ("table_s", "the table showing every row"),
)


def populate(orch: Orchestrator, count: int) -> float:
    """`count` sessions in the store (as `create` would insert them), then one apply:
    supervisord starts and zapvisor starts the runners in waves."""
    from ecosystem import apitoken
    from ecosystem.models import NewSession
    from ecosystem.ports import busy_ports

    s = orch.settings
    t0 = time.perf_counter()
    busy = busy_ports(orch.ports, s.bind)
    for i in range(count):
        token = apitoken.new_token()
        new = NewSession(name=f"bench-{i:03d}", connector="sim")
        orch.store.create_session(
            new,
            host=s.host_id,
            ports=orch.ports,
            exclude_ports=busy,
            max_sessions=s.max_sessions,
            actor="bench",
            api_token_hash=apitoken.hash_token(token),
        )
        apitoken.save_token(orch.paths, new.name, token)
    result = orch.apply()
    started = len(result.started)
    if started < count:
        print(f"warning: only {started} of {count} runners became healthy")
    return time.perf_counter() - t0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# -- the app's side (run as `tui_bench.py --child OUT`) ---------------------------------


def child(out: Path, expected: int, idle: float, profile: Path | None) -> None:
    t0 = float(os.environ["ZV_BENCH_T0"])
    sys.path.insert(0, os.environ.get("ZV_BENCH_APP", str(ROOT)))  # whose app is measured
    from textual import on
    from textual.events import Mount

    from ecosystem.fleet.control import control_side
    from ecosystem.settings import load_settings
    from tui.app import ZapvisorApp
    from tui.messages import SnapshotTaken
    from tui.screens.sessions import SessionsScreen

    figures: dict[str, Any] = {"import_s": time.time() - t0, "ticks": [], "applies": []}
    orch = control_side(load_settings(env_file=None))  # as make_app does
    figures["orch_s"] = time.time() - t0
    profiler = cProfile.Profile() if profile else None

    class BenchApp(ZapvisorApp):
        measuring = False

        @on(Mount)
        def _mounted(self) -> None:  # beside the app's own on_mount, which still runs
            self.call_after_refresh(lambda: figures.setdefault("mount_s", time.time() - t0))

        def on_snapshot_taken(self, message: SnapshotTaken) -> None:
            figures.setdefault("snapshot_s", time.time() - t0)
            figures.setdefault("first_tick_s", message.snapshot.elapsed)
            started = time.perf_counter()
            super().on_snapshot_taken(message)
            message.prevent_default()  # textual would call the base handler again
            if self.measuring:
                figures["ticks"].append(message.snapshot.elapsed)
                figures["applies"].append(time.perf_counter() - started)
            screen = self.screen
            shown = isinstance(screen, SessionsScreen) and len(screen.table.names) == expected
            if shown and "table_s" not in figures:
                self.call_after_refresh(self._filled)

        def _filled(self) -> None:
            if "table_s" in figures:
                return
            figures["table_s"] = time.time() - t0
            self.set_timer(3.0, self._idle_start)  # let the first PSS pass and boot settle

        def _idle_start(self) -> None:
            self.measuring = True
            figures["cpu_start"] = os.times()
            figures["thread_start"] = time.thread_time()  # the UI thread's alone
            figures["threads_start"] = thread_cpu()
            figures["wall_start"] = time.monotonic()
            if profiler:
                profiler.enable()
            self.set_timer(idle, self._idle_end)

        def _idle_end(self) -> None:
            if profiler:
                profiler.disable()
            start, now = figures.pop("cpu_start"), os.times()
            ui = time.thread_time() - figures.pop("thread_start")
            wall = time.monotonic() - figures.pop("wall_start")
            used = (now.user - start.user) + (now.system - start.system)
            figures["idle_cpu_percent"] = 100.0 * used / wall
            figures["idle_ui_percent"] = 100.0 * ui / wall
            figures["ui_per_tick_s"] = ui / max(len(figures["ticks"]), 1)
            figures["idle_wall_s"] = wall
            # the long-lived threads (the UI's, textual's writer and input ones); the
            # rest is the refresh workers, a new thread each tick
            before, after = figures.pop("threads_start"), thread_cpu()
            figures["idle_threads_percent"] = {
                name: round(100.0 * (after[name] - before[name]) / wall, 2)
                for name in after.keys() & before.keys()
            }
            self.exit()

    BenchApp(orch).run()
    out.write_text(json.dumps(figures))
    if profiler and profile:
        profiler.dump_stats(profile)


def thread_cpu() -> dict[str, float]:
    """CPU seconds of each thread of this process now, by name."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for thread in threading.enumerate():
        try:
            fields = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
        except OSError:
            continue
        user, system = fields.rsplit(")", 1)[1].split()[11:13]
        out[thread.name] = (int(user) + int(system)) / tick
    return out


def profile_top(path: Path, count: int = 30) -> str:
    """The top of the UI thread's profile, by own time and by cumulative time."""
    import io

    text = io.StringIO()
    stats = pstats.Stats(str(path), stream=text)
    stats.sort_stats("tottime").print_stats(count)
    stats.sort_stats("cumulative").print_stats(count)
    return text.getvalue()


# -- the driver -------------------------------------------------------------------------


def run_app(
    env: dict[str, str],
    out: Path,
    count: int,
    idle: float,
    profile: Path | None = None,
    app: Path = ROOT,
) -> tuple[dict[str, Any], int]:
    """Start the app (this checkout's, or ``app``'s) on a pty; drain (and count) what it
    draws until it exits."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", SIZE[1], SIZE[0], 0, 0))
    drawn = [0]
    tail = bytearray()

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            drawn[0] += len(data)
            tail.extend(data)
            del tail[:-4000]

    env = dict(env, ZV_BENCH_T0=repr(time.time()), ZV_BENCH_APP=str(app), TERM="xterm-256color")
    proc = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--child",
            str(out),
            "--sessions",
            str(count),
            "--idle",
            str(idle),
            *(["--profile-to", str(profile)] if profile else []),
        ],
        stdin=slave,
        stdout=slave,
        stderr=slave,  # textual draws on stderr
        env=env,
        cwd=app,
        start_new_session=True,
    )
    os.close(slave)
    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc.wait(timeout=idle + 180)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise SystemExit("the app did not finish in time") from None
    reader.join(timeout=5)
    os.close(master)
    if proc.returncode != 0 or not out.exists() or "table_s" not in out.read_text():
        raise SystemExit(f"the app failed ({proc.returncode}): {tail.decode(errors='replace')}")
    return json.loads(out.read_text()), drawn[0]


def _spread(values: list[float], unit: str = "", digits: int = 2) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}{unit}"
    return (
        f"{statistics.median(values):.{digits}f}{unit} "
        f"({min(values):.{digits}f}-{max(values):.{digits}f})"
    )


def report(runs: list[dict[str, Any]]) -> None:
    """The figures of one checkout's rounds."""
    for key, what in PHASES:
        print(f"app process start -> {what}: {_spread([f[key] for f in runs], ' s')}")
    first = [1000 * f["first_tick_s"] for f in runs]
    print(
        f"the first tick's own time (the worker's read, in the above): {_spread(first, ' ms', 0)}"
    )
    ticks = [1000 * statistics.median(f["ticks"]) for f in runs]
    applies = [1000 * statistics.median(f["applies"]) for f in runs]
    p95 = [1000 * percentile(f["applies"], 95) for f in runs]
    print(
        f"refresh tick (worker: 2 store queries + process table + psutil), median of "
        f"{len(runs[0]['ticks'])}: {_spread(ticks, ' ms', 1)}"
    )
    print(
        f"applying a tick on the UI thread (the handler: table, header, notifications): "
        f"median {_spread(applies, ' ms', 1)}, p95 {_spread(p95, ' ms', 1)}"
    )
    per_tick = [1000 * f["ui_per_tick_s"] for f in runs]
    print(
        f"the UI thread's CPU per tick while idle (handler, rendering, compositor): "
        f"{_spread(per_tick, ' ms', 1)}"
    )
    idle_s = runs[0]["idle_wall_s"]
    print(
        f"app CPU while idle on the sessions screen (1 refresh/s, {idle_s:.0f} s): "
        f"{_spread([f['idle_cpu_percent'] for f in runs], '%', 1)} of one core, the UI "
        f"thread {_spread([f['idle_ui_percent'] for f in runs], '%', 1)}"
    )
    threads = runs[-1].get("idle_threads_percent")
    if threads:
        shown = ", ".join(f"{name} {cpu:.1f}%" for name, cpu in sorted(threads.items()))
        print(f"  of which, by long-lived thread (last round): {shown}")
    drawn = [f["drawn_kib"] for f in runs]
    print(f"bytes drawn to the terminal in the whole run: {_spread(drawn, ' KiB', 0)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--idle", type=float, default=20.0, help="seconds of idle measured")
    ap.add_argument("--profile", action="store_true", help="cProfile the UI thread idle")
    ap.add_argument(
        "--baseline",
        type=Path,
        help="another checkout whose app is measured too, interleaved, on the same sessions",
    )
    ap.add_argument("--rounds", type=int, default=1, help="app starts measured per checkout")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--profile-to", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.sessions, args.idle, args.profile_to)
        return
    from ecosystem.orchestrator import Orchestrator
    from ecosystem.settings import make_settings
    from ecosystem.supctl import daemon
    from scripts.bench.freeports import free_block

    count = args.sessions
    # below the kernel's ephemeral range (32768+), where polling a port nobody listens
    # on yet can connect a socket to itself
    base = free_block(count + 10, start=12000)
    home = Path(tempfile.mkdtemp(prefix="zv-tui-bench-", dir="/tmp")) / "home"
    settings = make_settings(home=home, base_port=base, max_sessions=count + 10)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZAPVISOR_", "SUPABASE_"))}
    env.update(ZAPVISOR_HOME=str(home), BASE_PORT=str(base), MAX_SESSIONS=str(count + 10))
    orch = Orchestrator(settings)
    print(f"state dir {home}, ports from {base}, {os.cpu_count()} cpus, terminal {SIZE}")
    try:
        setup = populate(orch, count)
        print(f"setup: {count} sim sessions inserted and started in {setup:.1f} s")
        apps = {"this checkout": ROOT}
        if args.baseline:
            apps = {"baseline": args.baseline.resolve(), **apps}
        runs: dict[str, list[dict[str, Any]]] = {label: [] for label in apps}
        for r in range(args.rounds):
            for label, app in apps.items():
                prof = home.parent / f"ui-{r}.prof" if args.profile else None
                out = home.parent / f"figures-{r}.json"
                figures, drawn = run_app(env, out, count, args.idle, prof, app)
                figures["drawn_kib"] = drawn / 1024
                runs[label].append(figures)
                if prof is not None and label == "this checkout" and r == 0:
                    print(profile_top(prof))
        for label, app in apps.items():
            print(f"\n== {label} ({app}), {args.rounds} round(s): median (min-max)")
            report(runs[label])
    finally:
        t0 = time.perf_counter()
        # a loaded machine answers stopAllProcesses(wait) for 200 runners slowly
        daemon.shutdown(orch.paths, daemon.client(orch.paths, timeout=120), timeout=120)
        orch.close()
        print(f"shutdown of {count} runners + supervisord: {time.perf_counter() - t0:.1f} s")
        shutil.rmtree(home.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
