"""The terminal app at 200 sim sessions: time from process start to the table showing
every row, the cost of one refresh tick, and the app's CPU while it sits idle on the
sessions screen.

    .venv/bin/python scripts/bench/tui_bench.py [--sessions 200] [--idle 20]

The app runs as its own process on a real pseudo-terminal (80x24), drawing for real;
this script reads (and counts) what it draws. A private state dir and port block are
used, and the supervisord started here is stopped at the end. Figures only: the
machine is shared and noisy, nothing fails on timing.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
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
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ecosystem import apitoken  # noqa: E402
from ecosystem.models import NewSession  # noqa: E402
from ecosystem.orchestrator import Orchestrator  # noqa: E402
from ecosystem.ports import busy_ports  # noqa: E402
from ecosystem.settings import load_settings, make_settings  # noqa: E402
from ecosystem.supctl import daemon  # noqa: E402
from scripts.bench.freeports import free_block  # noqa: E402

SIZE = (80, 24)


def populate(orch: Orchestrator, count: int) -> float:
    """`count` sessions in the store (as `create` would insert them), then one apply:
    supervisord starts and zapvisor starts the runners in waves."""
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


def child(out: Path, expected: int, idle: float) -> None:
    t0 = float(os.environ["ZV_BENCH_T0"])
    from tui.app import ZapvisorApp
    from tui.messages import SnapshotTaken
    from tui.screens.sessions import SessionsScreen

    t_import = time.time() - t0
    orch = Orchestrator(load_settings(env_file=None))
    figures: dict[str, Any] = {"import_s": t_import, "ticks": [], "applies": []}

    class BenchApp(ZapvisorApp):
        measuring = False

        def on_snapshot_taken(self, message: SnapshotTaken) -> None:
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
            figures["wall_start"] = time.monotonic()
            self.set_timer(idle, self._idle_end)

        def _idle_end(self) -> None:
            start, now = figures.pop("cpu_start"), os.times()
            wall = time.monotonic() - figures.pop("wall_start")
            used = (now.user - start.user) + (now.system - start.system)
            figures["idle_cpu_percent"] = 100.0 * used / wall
            figures["idle_wall_s"] = wall
            self.exit()

    BenchApp(orch).run()
    out.write_text(json.dumps(figures))


# -- the driver -------------------------------------------------------------------------


def run_app(env: dict[str, str], out: Path, count: int, idle: float) -> tuple[dict[str, Any], int]:
    """Start the app on a pty; drain (and count) what it draws until it exits."""
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

    env = dict(env, ZV_BENCH_T0=repr(time.time()), TERM="xterm-256color")
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
        ],
        stdin=slave,
        stdout=slave,
        stderr=slave,  # textual draws on stderr
        env=env,
        cwd=ROOT,
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--idle", type=float, default=20.0, help="seconds of idle measured")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.sessions, args.idle)
        return

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
        figures, drawn = run_app(env, home.parent / "figures.json", count, args.idle)
        ticks = [t * 1000 for t in figures["ticks"]]
        applies = [t * 1000 for t in figures["applies"]]
        idle_s = figures["idle_wall_s"]
        print(f"app process start -> textual imported:         {figures['import_s']:.2f} s")
        print(f"app process start -> table showing all {count} rows: {figures['table_s']:.2f} s")
        print(
            f"refresh tick (worker: 2 store queries + process table + psutil), {len(ticks)} "
            f"ticks: median {statistics.median(ticks):.1f} ms, p95 {percentile(ticks, 95):.1f} ms"
        )
        print(
            f"applying a tick on the UI thread (table, header, notifications): median "
            f"{statistics.median(applies):.1f} ms, p95 {percentile(applies, 95):.1f} ms"
        )
        print(
            f"app CPU while idle on the sessions screen (1 refresh/s, {idle_s:.0f} s): "
            f"{figures['idle_cpu_percent']:.1f}% of one core"
        )
        print(f"bytes drawn to the terminal in the whole run: {drawn / 1024:.0f} KiB")
    finally:
        t0 = time.perf_counter()
        # a loaded machine answers stopAllProcesses(wait) for 200 runners slowly
        daemon.shutdown(orch.paths, daemon.client(orch.paths, timeout=120), timeout=120)
        orch.close()
        print(f"shutdown of {count} runners + supervisord: {time.perf_counter() - t0:.1f} s")
        shutil.rmtree(home.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
