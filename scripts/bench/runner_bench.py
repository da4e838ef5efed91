"""Runner costs: idle PSS of one sim and one neonize runner, PSS of 20 neonize runners
together, webhook delivery throughput to a local receiver, and the PSS of a runner that
has delivered webhooks (its HTTP client is made on the first delivery).

    .venv/bin/python scripts/bench/runner_bench.py [--runners 20] [--events 500]

Everything runs in a private state dir on free loopback ports under its own
supervisord, stopped at the end. neonize runners are offline here (no route to
WhatsApp), i.e. waiting between connection attempts: their idle cost. Prints figures;
never fails on timing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ecosystem.models import utcnow  # noqa: E402
from ecosystem.store.sqlite import SQLiteStore  # noqa: E402
from ecosystem.webhook_events import new_event  # noqa: E402
from scripts.bench.freeports import free_block  # noqa: E402


class Zapvisor:
    def __init__(self, sessions: int) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="zv-bench-"))
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("ZAPVISOR_", "BASE_PORT", "MAX_SESSIONS", "SUPABASE_"))
        }
        self.env.update(
            ZAPVISOR_HOME=str(self.tmp / "home"),
            BASE_PORT=str(free_block(sessions)),
            MAX_SESSIONS=str(sessions),
            ZAPVISOR_START_TIMEOUT="60",
        )

    def cli(self, *args: str) -> Any:
        out = subprocess.run(
            [sys.executable, "-m", "tui.cli.main", *args, "--json"],
            env=self.env,
            cwd=self.tmp,
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        return json.loads(out.stdout)

    def close(self) -> None:
        subprocess.run(
            [sys.executable, "-m", "tui.cli.main", "shutdown"],
            env=self.env,
            cwd=self.tmp,
            capture_output=True,
            check=False,
            timeout=180,
        )
        shutil.rmtree(self.tmp, ignore_errors=True)


def pss_mb(pids: list[int]) -> float:
    return sum(psutil.Process(p).memory_full_info().pss for p in pids) / 1024**2


class Counter(BaseHTTPRequestHandler):
    times: list[float] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        Counter.times.append(time.perf_counter())
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runners", type=int, default=20)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--settle", type=float, default=8.0, help="seconds before measuring")
    args = parser.parse_args()
    zv = Zapvisor(args.runners + 2)
    try:
        sim = zv.cli("create", "sim-1", "--connector", "sim")
        neo = zv.cli("create", "neo-1", "--connector", "neonize")
        time.sleep(args.settle)
        sim_pss, neo_pss = pss_mb([sim["pid"]]), pss_mb([neo["pid"]])
        print(f"idle PSS, one sim runner:      {sim_pss:6.1f} MB")
        print(f"idle PSS, one neonize runner:  {neo_pss:6.1f} MB  ({neo_pss / sim_pss:.1f}x sim)")

        pids = [neo["pid"]]
        for i in range(2, args.runners + 1):
            pids.append(zv.cli("create", f"neo-{i}", "--connector", "neonize")["pid"])
        time.sleep(args.settle)
        total = pss_mb(pids)
        cpu = sum(sum(psutil.Process(p).cpu_times()[:2]) for p in pids)
        time.sleep(5)
        cpu = sum(sum(psutil.Process(p).cpu_times()[:2]) for p in pids) - cpu
        print(
            f"PSS of {len(pids)} neonize runners:   {total:6.1f} MB  "
            f"({total / len(pids):.1f} MB each); CPU while idle: {cpu / 5 * 100:.1f}% of a core"
        )

        server = ThreadingHTTPServer(("127.0.0.1", 0), Counter)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        zv.cli("config", "sim-1", "--webhook-url", url)
        zv.cli("stop", "sim-1")
        store = SQLiteStore(Path(zv.env["ZAPVISOR_HOME"]) / "zapvisor.db")
        store.update_session(
            "sim-1", {"webhook_events": ["message_ack"]}, actor="bench", action="webhook"
        )
        for i in range(args.events):
            store.enqueue_webhook(
                new_event("sim-1", "message_ack", {"messageId": f"M{i}", "status": "read"})
            )
        store.close()
        Counter.times.clear()
        zv.cli("start", "sim-1")
        deadline = time.monotonic() + 300
        while len(Counter.times) < args.events and time.monotonic() < deadline:
            time.sleep(0.05)
        got = len(Counter.times)
        span = Counter.times[-1] - Counter.times[0] if got > 1 else float("nan")
        print(
            f"webhook delivery: {got}/{args.events} events in {span:.2f} s = "
            f"{(got - 1) / span:.0f} events/s (signed, one at a time, recorded in the store)"
        )
        after = pss_mb([zv.cli("show", "sim-1")["pid"]])
        print(f"PSS of that sim runner after delivering (httpx loaded): {after:6.1f} MB")
        server.shutdown()
        print(f"(at {utcnow().isoformat(timespec='seconds')}, load {os.getloadavg()[0]:.1f})")
    finally:
        zv.close()


if __name__ == "__main__":
    main()
