"""Backup and restore of N sessions: archive size and time, plain and encrypted.

Sessions are created stopped (no runner needed to measure the archive), each with an
auth database the size of a paired neonize session's (`--auth-kb`, a real SQLite file
so the backup copies it through SQLite's backup API). Restore goes into a fresh state
dir, stopped sessions stay stopped, so the figures are the archive's, not runners'.

    .venv/bin/python scripts/bench/backup_bench.py [--sessions 50] [--auth-kb 512]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ecosystem.models import NewSession
from ecosystem.orchestrator import Orchestrator
from ecosystem.settings import make_settings
from ecosystem.states import DesiredState
from scripts.bench.create_latency import free_block

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--auth-kb", type=int, default=512)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="zv-backup-bench-"))
    try:
        home = root / "home"
        base = free_block(args.sessions, start=14000)
        settings = make_settings(home=home, base_port=base, max_sessions=args.sessions)
        orch = Orchestrator(settings)
        started = time.perf_counter()
        for i in range(args.sessions):
            name = f"cliente-{i:03d}"
            orch.create(
                NewSession(name=name, connector="sim", desired_state=DesiredState.STOPPED),
                wait=False,
            )
            _auth_db(orch.paths.token_dir(name) / "neonize.db", args.auth_kb)
        print(f"{args.sessions} sessions with {args.auth_kb} KB of auth each "
              f"made in {time.perf_counter() - started:.1f} s")  # fmt: skip
        for sealed in (False, True):
            dest = root / f"b{int(sealed)}.tar.gz"
            report = orch.backup(dest, passphrase=PASSPHRASE if sealed else None)
            what = "encrypted" if sealed else "plain"
            print(f"backup {what:9}: {report.bytes / 1e6:7.1f} MB in {report.seconds:.2f} s")
        orch.shutdown()
        orch.close()
        for sealed in (False, True):
            fresh = root / f"fresh{int(sealed)}"
            other = Orchestrator(
                make_settings(home=fresh, base_port=base, max_sessions=args.sessions)
            )
            t0 = time.perf_counter()
            restored = other.restore(
                root / f"b{int(sealed)}.tar.gz", passphrase=PASSPHRASE if sealed else None
            )
            took = time.perf_counter() - t0
            what = "encrypted" if sealed else "plain"
            print(f"restore {what:9}: {len(restored.sessions)} sessions in {took:.2f} s")
            other.shutdown()
            other.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
