"""One sim runner's own start: import time, process start → `/health` answering and →
its first report written to the store (the row's updated_at moves), its idle PSS and
its stop (SIGTERM → exit), for one or more checkouts of the code measured interleaved
in one run.

    .venv/bin/python scripts/bench/runner_start.py [--tree DIR ...] [--rounds 5]

A private state dir gets one sim session through the CLI (under its own supervisord),
which is then stopped; each round starts `python -m runner` for that session directly
(no supervisord in between) from every ``--tree`` in turn (default: this checkout), so
the figures are the runner's alone. Pass an older checkout as a second ``--tree`` to
compare before and after on the same host, in the same minutes. Prints medians (and
ranges); never fails on timing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from scripts.bench.freeports import free_block  # noqa: E402

_IMPORT = (
    "import time; t = time.perf_counter(); import runner.startup; print(time.perf_counter() - t)"
)


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=0.5) as r:
            status: int = r.status
            return status == 200
    except OSError:
        return False


def written_since(db: Path, since: str) -> bool:
    """Whether the runner wrote its first report to the session's row: its updated_at
    is later than ``since`` (the store keeps ISO 8601 UTC times, which sort as text)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            row = conn.execute(
                "SELECT updated_at FROM whatsapp_sessions WHERE session_name = 's1'"
            ).fetchone()
    except sqlite3.Error:
        return False
    return row is not None and row[0] > since


def tree_env(tree: Path, base: dict[str, str]) -> dict[str, str]:
    return {**base, "PYTHONPATH": str(tree)}


def import_ms(tree: Path, env: dict[str, str]) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _IMPORT],
        cwd=tree,
        env=tree_env(tree, env),
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout) * 1000


def one_start(
    tree: Path, env: dict[str, str], home: Path, port: int, settle: float
) -> tuple[float, float, float, float]:
    """(seconds from spawn to /health answering, seconds from spawn to its first report
    in the store, idle PSS in MB after ``settle``, seconds from SIGTERM to the exit)."""
    since = datetime.now(UTC).isoformat(timespec="milliseconds")
    t0 = time.perf_counter()
    command = [sys.executable, "-m", "runner", "--home", str(home), "--session", "s1"]
    proc = subprocess.Popen(
        [*command, "--port", str(port)],
        cwd=tree,
        env=tree_env(tree, env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    up = written = 0.0
    try:
        while not (up and written):
            if proc.poll() is not None or time.perf_counter() - t0 > 60:
                raise SystemExit(f"the runner from {tree} did not answer /health or report")
            if not up and answers(port):
                up = time.perf_counter() - t0
            if not written and written_since(home / "zapvisor.db", since):
                written = time.perf_counter() - t0
            time.sleep(0.002)
        time.sleep(settle)
        pss = psutil.Process(proc.pid).memory_full_info().pss / 1024**2
    finally:
        t1 = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        down = time.perf_counter() - t1
    return up, written, pss, down


def describe(values: list[float], unit: str) -> str:
    return (
        f"{statistics.median(values):7.1f} {unit} ({min(values):.1f}-{max(values):.1f})"
        if unit != "s"
        else f"{statistics.median(values) * 1000:7.0f} ms "
        f"({min(values) * 1000:.0f}-{max(values) * 1000:.0f})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tree", type=Path, action="append", help="a checkout (repeatable)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--settle", type=float, default=3.0, help="seconds before reading PSS")
    args = ap.parse_args()
    trees = [t.resolve() for t in (args.tree or [ROOT])]
    tmp = Path(tempfile.mkdtemp(prefix="zv-bench-start-"))
    home = tmp / "home"
    port = free_block(1)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ZAPVISOR_", "BASE_PORT", "MAX_SESSIONS", "SUPABASE_", "PYTHON"))
    }
    env.update(ZAPVISOR_HOME=str(home), BASE_PORT=str(port), MAX_SESSIONS="1")

    def cli(*words: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "tui.cli.main", *words, "--json"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            check=True,
            timeout=300,
        )

    load = os.getloadavg()[0]
    results: dict[Path, dict[str, list[float]]] = {
        t: {"imp": [], "up": [], "written": [], "pss": [], "down": []} for t in trees
    }
    try:
        cli("create", "s1", "--connector", "sim")
        cli("stop", "s1")
        for _ in range(args.rounds):
            for tree in trees:
                results[tree]["imp"].append(import_ms(tree, env))
                up, written, pss, down = one_start(tree, env, home, port, args.settle)
                results[tree]["up"].append(up)
                results[tree]["written"].append(written)
                results[tree]["pss"].append(pss)
                results[tree]["down"].append(down)
    finally:
        subprocess.run(
            [sys.executable, "-m", "tui.cli.main", "shutdown"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            check=False,
            timeout=180,
        )
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{args.rounds} rounds, load {load:.1f} at start, {os.getloadavg()[0]:.1f} at end")
    for tree, r in results.items():
        print(f"{tree}")
        print(f"  import runner.startup      {describe(r['imp'], 'ms')}")
        print(f"  spawn -> /health answers   {describe(r['up'], 's')}")
        print(f"  spawn -> status written    {describe(r['written'], 's')}")
        print(f"  idle PSS                   {describe(r['pss'], 'MB')}")
        print(f"  SIGTERM -> exit            {describe(r['down'], 's')}")
    print(
        json.dumps(
            {str(t): {k: statistics.median(v) for k, v in r.items()} for t, r in results.items()}
        )
    )


if __name__ == "__main__":
    main()
