"""Backup and restore of N sessions: archive size, time and peak memory, plain and
encrypted.

Sessions are created stopped (no runner needed to measure the archive), each with an
auth database the size of a paired neonize session's (`--auth-kb`, a real SQLite file
so the backup copies it through SQLite's backup API). Restore goes into a fresh state
dir, stopped sessions stay stopped, so the figures are the archive's, not runners'.

Each backup and each restore runs in a process of its own, so its peak RSS
(`ru_maxrss`) is its own: "peak" is that figure, "+" is how far it rose above the same
process right before the call (imports and the store already open).

    .venv/bin/python scripts/bench/backup_bench.py [--sessions 50] [--auth-kb 512]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ecosystem.models import NewSession
from ecosystem.orchestrator import Orchestrator
from ecosystem.settings import make_settings
from ecosystem.states import DesiredState
from scripts.bench.freeports import free_block

PASSPHRASE = "bench passphrase 123"


def _auth_db(path: Path, kb: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE whatsmeow_keys (id INTEGER PRIMARY KEY, key BLOB)")
    db.executemany(
        "INSERT INTO whatsmeow_keys (key) VALUES (?)",
        [(os.urandom(256),) for _ in range(kb * 4)],
    )
    db.commit()
    db.close()


def _rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(args: argparse.Namespace) -> None:
    """One backup or one restore, in this process: its figures as one JSON line."""
    settings = make_settings(home=Path(args.home), base_port=args.base, max_sessions=args.n)
    orch = Orchestrator(settings)
    orch.store.list_sessions()  # the store open before the baseline
    passphrase = PASSPHRASE if args.sealed else None
    before = _rss_kb()
    t0 = time.perf_counter()
    if args.child == "backup":
        size = orch.backup(Path(args.file), passphrase=passphrase).bytes
    else:
        size = len(orch.restore(Path(args.file), passphrase=passphrase).sessions)
    took = time.perf_counter() - t0
    peak = _rss_kb()
    orch.shutdown()
    orch.close()
    print(json.dumps({"seconds": took, "size": size, "peak_kb": peak, "rise_kb": peak - before}))


def _run(what: str, home: Path, file: Path, base: int, n: int, sealed: bool) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", what, "--home", str(home), "--file", str(file)]
    cmd += ["--base", str(base), "--n", str(n)] + (["--sealed"] if sealed else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{what} failed: {proc.stderr.strip()[-2000:]}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _mem(got: dict[str, float]) -> str:
    peak, rise = got["peak_kb"] / 1024, got["rise_kb"] / 1024
    return f"{got['seconds']:6.2f} s, peak RSS {peak:6.1f} MB (+{rise:.1f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--auth-kb", type=int, default=512)
    parser.add_argument("--child", choices=("backup", "restore"), help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--base", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sealed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    root = Path(tempfile.mkdtemp(prefix="zv-backup-bench-"))
    n = args.sessions
    try:
        home = root / "home"
        base = free_block(n, start=14000)
        orch = Orchestrator(make_settings(home=home, base_port=base, max_sessions=n))
        started = time.perf_counter()
        for i in range(n):
            name = f"cliente-{i:03d}"
            orch.create(
                NewSession(name=name, connector="sim", desired_state=DesiredState.STOPPED),
                wait=False,
            )
            _auth_db(orch.paths.token_dir(name) / "neonize.db", args.auth_kb)
        print(f"{n} sessions with {args.auth_kb} KB of auth each "
              f"made in {time.perf_counter() - started:.1f} s")  # fmt: skip
        orch.shutdown()
        orch.close()
        for sealed in (False, True):
            what = "encrypted" if sealed else "plain"
            dest = root / f"b{int(sealed)}.tar.gz"
            got = _run("backup", home, dest, base, n, sealed)
            print(f"backup  {what:9}: {got['size'] / 1e6:7.1f} MB in {_mem(got)}")
        for sealed in (False, True):
            what = "encrypted" if sealed else "plain"
            fresh = root / f"fresh{int(sealed)}"
            got = _run("restore", fresh, root / f"b{int(sealed)}.tar.gz", base, n, sealed)
            print(f"restore {what:9}: {got['size']:.0f} sessions in {_mem(got)}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
