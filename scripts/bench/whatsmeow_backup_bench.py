"""Backup and restore of neonize sessions whose auth lives in whatsmeow's tables: what
each device adds to the archive, and how long its rows take out and back in.

A real PostgreSQL (tests/pgserver.py) with whatsmeow's real schema (made by whatsmeow
through neonize's Go side, no WhatsApp reached) holds N stopped neonize sessions with
store auth, each with a device of realistic size (tests/whatsmeow_rows.py: `--pre-keys`
800, `--sessions` 50, `--contacts` 200 by default); a restore goes into a fresh
database, where whatsmeow creates its tables first (that time included, and given on
its own). The same backup without whatsmeow's member gives the baseline.

    .venv/bin/python scripts/bench/whatsmeow_backup_bench.py [--devices 1] [--pre-keys 800]
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ecosystem import backup_archive
from ecosystem.lease import AuthKind
from ecosystem.models import NewSession
from ecosystem.orchestrator import Orchestrator
from ecosystem.settings import make_settings
from ecosystem.states import DesiredState
from ecosystem.store.postgres import PostgresStore
from ecosystem.whatsmeow_restore import create_tables
from scripts.bench.freeports import free_block
from tests.pgserver import PgServer
from tests.whatsmeow_rows import count_rows, fill_device


def _member_size(archive: Path) -> int:
    """The uncompressed size of the archive's whatsmeow.jsonl."""
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(archive.read_bytes()))) as tar:
        return tar.getmember(backup_archive.WHATSMEOW).size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=1)
    ap.add_argument("--pre-keys", type=int, default=800)
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--contacts", type=int, default=200)
    args = ap.parse_args()
    n = args.devices
    base = free_block(n + 1, start=17000)
    server = PgServer(free_block(1, start=base + n + 10))
    tmp = Path(tempfile.mkdtemp(prefix="zv-wmbench-"))
    try:
        server.start()
        for db in ("src", "dst", "probe"):
            server.execute(f"CREATE DATABASE {db}")
            PostgresStore(server.dsn(db)).migrate()
        src, dst = server.dsn("src"), server.dsn("dst")
        create_tables(src)
        store = PostgresStore(src)
        for i in range(n):
            name, jid = f"s{i}", f"55119{i:08d}:7@s.whatsapp.net"
            store.create_session(
                NewSession(name=name, connector="neonize", auth=AuthKind.STORE,
                           desired_state=DesiredState.STOPPED),
                host="h1", ports=range(base, base + n), exclude_ports=(), max_sessions=n,
                actor="bench",
            )  # fmt: skip
            store.set_runtime(name, {"phone": jid.split(":")[0], "device_jid": jid}, actor="b")
            fill_device(src, jid, pre_keys=args.pre_keys, sessions=args.sessions,
                        contacts=args.contacts)  # fmt: skip
        store.close()
        rows = sum(v for t, v in count_rows(src).items() if t != "whatsmeow_version")

        def orch(db: str, home: str) -> Orchestrator:
            return Orchestrator(
                make_settings(home=tmp / home, base_port=base, max_sessions=n,
                              database_url=db, host_id="h1")
            )  # fmt: skip

        archive = tmp / "zv.tar.gz"
        o = orch(src, "a")
        t0 = time.perf_counter()
        report = o.backup(archive)
        backup_s = time.perf_counter() - t0
        o.close()
        t0 = time.perf_counter()
        create_tables(server.dsn("probe"))  # what the restore does first on dst
        create_s = time.perf_counter() - t0
        o = orch(dst, "b")
        t0 = time.perf_counter()
        restored = o.restore(archive)
        restore_s = time.perf_counter() - t0
        o.shutdown()
        o.close()
        assert restored.sessions == report.sessions and not restored.failed
        print(
            json.dumps(
                {
                    "devices": report.whatsmeow_devices,
                    "rows": rows,
                    "whatsmeow_member_bytes": _member_size(archive),
                    "archive_bytes": report.bytes,
                    "archive_bytes_per_device": round(report.bytes / n),
                    "backup_s": round(backup_s, 3),
                    "restore_s": round(restore_s, 3),
                    "of_which_whatsmeow_creates_its_tables_s": round(create_s, 3),
                }
            )
        )
    finally:
        server.destroy()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
