"""How long `zapvisor create` takes to a healthy runner and to a readable QR, with 0, 50
and 200 sim sessions already running; and `zapvisor list --json` at 200.

    .venv/bin/python scripts/bench/create_latency.py [--levels 0,50,200] [--repeat 3]

Uses a private state dir and port block, and stops the supervisord it started. Prints
figures; compare the ratios between levels (the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ecosystem.models import NewSession  # noqa: E402
from ecosystem.orchestrator import Orchestrator  # noqa: E402
from ecosystem.settings import make_settings  # noqa: E402
from ecosystem.store import open_store  # noqa: E402
from ecosystem.supctl import daemon  # noqa: E402
from scripts.bench.freeports import free_block  # noqa: E402


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=0.5) as r:
            status: int = r.status  # urlopen is typed as returning Any
            return status == 200
    except OSError:
        return False


def one_create(env: dict[str, str], settings_home: Path, name: str, port: int) -> dict[str, float]:
    store = open_store(make_settings(home=settings_home))
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli.main", "create", name, "--connector", "sim"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    t_health = t_qr = None
    while t_health is None or t_qr is None:
        now = time.perf_counter() - t0
        if now > 60:
            raise SystemExit(f"{name} did not come up: {proc.stderr.read() if proc.stderr else ''}")
        if t_health is None and healthy(port):
            t_health = now
        if t_qr is None:
            try:
                if store.get_session(name).qr_payload:
                    t_qr = time.perf_counter() - t0
            except Exception:
                pass
        time.sleep(0.005)
    proc.wait(timeout=60)
    t_exit = time.perf_counter() - t0
    store.close()
    return {"health": t_health, "qr": t_qr, "cli_exit": t_exit}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--levels", default="0,50,200")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    levels = sorted(int(x) for x in args.levels.split(","))
    top = max(levels)
    base = free_block(top + args.repeat + 5)
    home = Path(tempfile.mkdtemp(prefix="zv-bench-", dir="/tmp")) / "home"
    settings = make_settings(home=home, base_port=base, max_sessions=top + args.repeat + 5)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZAPVISOR_", "SUPABASE_"))}
    env.update(
        ZAPVISOR_HOME=str(home), BASE_PORT=str(base), MAX_SESSIONS=str(settings.max_sessions)
    )
    orch = Orchestrator(settings)
    print(f"state dir {home}, ports from {base}, {os.cpu_count()} cpus")
    print(
        f"{'present':>8} {'create→/health':>15} {'create→QR':>10} {'cli exit':>9}  (median of"
        f" {args.repeat}, seconds)"
    )
    present = 0
    results: dict[int, dict[str, float]] = {}
    try:
        for level in levels:
            t_fill = time.perf_counter()
            while present < level:
                orch.create(NewSession(name=f"fill-{present:03d}", connector="sim"))
                present += 1
            fill = time.perf_counter() - t_fill
            runs = []
            for i in range(args.repeat):
                name = f"probe-{level}-{i}"
                expected = base + present
                runs.append(one_create(env, home, name, expected))
                orch.delete(name, purge=True)
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            results[level] = med
            print(
                f"{level:>8} {med['health']:>15.3f} {med['qr']:>10.3f} {med['cli_exit']:>9.3f}"
                f"  (filled in {fill:.1f} s)"
            )
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-m", "tui.cli.main", "list", "--json"],
                env=env,
                capture_output=True,
                check=True,
            )
            times.append(time.perf_counter() - t0)
            assert out.stdout.count(b'"name"') == present
        print(
            f"`zapvisor list --json` at {present} sessions: median {statistics.median(times):.3f}"
            f" s, min {min(times):.3f} s (process start included)"
        )
        t0 = time.perf_counter()
        orch.list_sessions()
        print(
            f"Orchestrator.list_sessions() in-process at {present}: "
            f"{time.perf_counter() - t0:.3f} s"
        )
        if len(levels) > 1:
            lo, hi = results[levels[0]], results[levels[-1]]
            print(
                f"ratio create→/health at {levels[-1]} vs {levels[0]}: "
                f"{hi['health'] / lo['health']:.2f}x"
            )
    except BaseException:
        traceback.print_exc()
        raise
    finally:
        t0 = time.perf_counter()
        daemon.shutdown(orch.paths, orch.sup, timeout=120)
        print(f"shutdown of {present} runners + supervisord: {time.perf_counter() - t0:.1f} s")
        shutil.rmtree(home.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
