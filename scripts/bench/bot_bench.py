"""The bot's cost: inbound message → reply sent, minus the model's own time (zapvisor's
overhead: the store, the history, the HTTP round trips, the send), and the PSS a sim
runner gains once its bot has answered (httpx, the provider code).

    .venv/bin/python scripts/bench/bot_bench.py [--messages 50] [--model-ms 50]

A fake OpenAI-compatible server on loopback answers after --model-ms (the "model's
time", measured on its side); the runners are sim sessions under a private
supervisord, stopped at the end. Prints figures; never fails on timing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ecosystem import runner_client
from scripts.bench.freeports import free_block
from scripts.bench.runner_bench import Zapvisor, pss_mb

KEY = "sk-bench-not-a-real-key"


class FakeModel(BaseHTTPRequestHandler):
    """Chat completions after a fixed think time; records its own time per request."""

    protocol_version = "HTTP/1.1"
    think = 0.05
    spent: list[float] = []

    def do_POST(self) -> None:
        started = time.perf_counter()
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        time.sleep(FakeModel.think)
        body = json.dumps(
            {"choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}]}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        FakeModel.spent.append(time.perf_counter() - started)

    def log_message(self, *args: Any) -> None:
        pass


def paired(zv: Zapvisor, name: str, ai: dict[str, Any]) -> tuple[int, str, int]:
    timing = {"reply_delay": 0, "typing": False}
    zv.cli(
        "create", name, "--connector", "sim",
        "--ai-config", json.dumps(ai), "--timing-config", json.dumps(timing),
    )  # fmt: skip
    zv.cli("qr", name, "--wait", "30")
    zv.cli("sim-scan", name)
    view = zv.cli("show", name)
    token = (Path(zv.env["ZAPVISOR_HOME"]) / "secrets" / f"{name}.token").read_text().strip()
    return view["port"], token, view["pid"]


def sent_count(port: int, token: str) -> int:
    _, answer = runner_client.call("127.0.0.1", port, "/sim/sent", token=token, timeout=10)
    return sum(1 for s in answer["sent"] if s["kind"] == "text")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--model-ms", type=float, default=50.0)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before PSS")
    args = parser.parse_args()
    FakeModel.think = args.model_ms / 1000
    server = ThreadingHTTPServer(("127.0.0.1", free_block(1)), FakeModel)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/v1"
    zv = Zapvisor(4)
    zv.env["ZAPVISOR_API_RATE_LIMIT"] = "0"  # the bench polls /sim/sent every 2 ms
    try:
        _, _, pid_off = paired(zv, "plain", {})
        ai = {"enabled": True, "base_url": base, "history": 10}
        port, token, pid = paired(zv, "bot", ai)
        subprocess_secret(zv, "bot")
        time.sleep(args.settle)
        before = pss_mb([pid])
        overheads = []
        for i in range(args.messages):
            count = sent_count(port, token)
            start = time.perf_counter()
            runner_client.call(
                "127.0.0.1", port, "/sim/inbound", method="POST", token=token,
                body={"from": "5511977776666", "body": f"mensagem {i}"}, timeout=10,
            )  # fmt: skip
            while sent_count(port, token) == count:
                time.sleep(0.002)
            total = time.perf_counter() - start
            overheads.append((total - FakeModel.spent[-1]) * 1000)
        time.sleep(args.settle)
        after, plain = pss_mb([pid]), pss_mb([pid_off])
        q = statistics.quantiles(overheads, n=10)
        print(
            f"inbound -> reply, minus the model's {args.model_ms:g} ms, over {len(overheads)} "
            f"messages (history 10, SQLite): median {statistics.median(overheads):.1f} ms, "
            f"p90 {q[-1]:.1f} ms, min {min(overheads):.1f} ms"
        )
        print(
            f"PSS: runner without a bot {plain:.1f} MB; with the bot before its first reply "
            f"{before:.1f} MB, after {after:.1f} MB (+{after - plain:.1f} MB over no bot)"
        )
        print(f"(load {os.getloadavg()[0]:.1f}; includes polling /sim/sent every 2 ms)")
    finally:
        zv.close()
        server.shutdown()


def subprocess_secret(zv: Zapvisor, name: str) -> None:
    import subprocess

    subprocess.run(
        [sys.executable, "-m", "tui.cli.main", "secret", name, "openai"],
        env=zv.env, cwd=zv.tmp, input=KEY, capture_output=True, text=True, check=True,
    )  # fmt: skip


if __name__ == "__main__":
    main()
