"""`zapvisor backup` / `restore` of sessions whose WhatsApp auth lives in the store, for
real: sim sessions on a real supervisord and a real PostgreSQL, the CLI as separate
processes. The backup is restored into a new database after the first one and the
state dir are gone, as on a fresh machine. The WhatsApp side is the sim connector (no
WhatsApp here); its simulated server lives in the store."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
from collections.abc import Callable

import pytest

from ecosystem import backup_archive
from ecosystem.backup_archive import ArchiveError
from ecosystem.lease import AuthKind
from ecosystem.models import NewSession
from ecosystem.orchestrator import Orchestrator
from ecosystem.store.postgres import PostgresStore
from ecosystem.webhook_events import new_event
from tests.conftest import Env, PgCluster, free_port_block, wait_for
from tests.test_backup_archive import _tar

pytestmark = pytest.mark.e2e


def _connected(zv: Env, name: str) -> dict[str, object] | None:
    shown = zv.json("show", name)
    return shown if shown["status"] == "connected" and shown["pid"] else None


def _paired(zv: Env, name: str, *extra: str) -> str:
    zv.json("create", name, "--connector", "sim", *extra)
    zv.cli("qr", name, "--wait", "30")
    return str(zv.json("sim-scan", name)["phone"])


def test_store_auth_sessions_come_back_on_a_new_database_without_a_scan(
    pg_cluster: PgCluster, make_env: Callable[..., Env]
) -> None:
    first, second = pg_cluster.new_database(), pg_cluster.new_database()
    zv = make_env(ZAPVISOR_DATABASE_URL=pg_cluster.dsn(first), ZAPVISOR_HOST_ID="h1")
    try:
        dead_port = free_port_block(1)  # nothing listens: its events stay undelivered
        phones = {
            "loja-1": _paired(zv, "loja-1", "--webhook-url", f"http://127.0.0.1:{dead_port}/"),
            "loja-2": _paired(zv, "loja-2", "--no-failover"),
            "arquivo": _paired(zv, "arquivo", "--auth", "local"),
        }
        shown = {n: zv.json("show", n) for n in phones}
        assert [shown[n]["auth"] for n in phones] == ["store", "store", "local"]
        old = PostgresStore(pg_cluster.dsn(first))
        devices = {n: old.sim_auth(n) for n in ("loja-1", "loja-2")}
        old.close()
        assert all(d is not None for d in devices.values())
        pending = wait_for(lambda: zv.json("webhooks", "loja-1")["counts"]["pending"] or None)

        archive = zv.home.parent / "zv.tar.gz"
        report = zv.json("backup", "-o", str(archive))
        assert report["sessions"] == sorted(phones) and report["store_auth"] == 2
        assert report["webhooks"] >= pending

        # a fresh machine: no state dir, and the old database gone
        zv.cli("shutdown")
        shutil.rmtree(zv.home)
        pg_cluster.drop_database(first)
        zv.extra["ZAPVISOR_DATABASE_URL"] = pg_cluster.dsn(second)

        restored = zv.json("restore", str(archive))
        assert restored["sessions"] == sorted(phones) and restored["webhooks"] >= pending
        for name, phone in phones.items():
            back = wait_for(lambda n=name: _connected(zv, n), timeout=30)
            assert back["phone"] == phone and back["qr_payload"] is None
            assert (back["auth"], back["failover"]) == (shown[name]["auth"], name != "loja-2")
        new = PostgresStore(pg_cluster.dsn(second))
        try:
            for name, device in devices.items():
                got = new.sim_auth(name)
                assert got is not None and device is not None
                assert (got.device, got.phone) == (device.device, device.phone)
            # nothing asked for a scan here: no session ever waited for one
            trail = new.list_events(limit=1000)
            assert not [e for e in trail if e.to_status == "waiting_scan"]
            assert {e.session_name for e in trail if e.action == "restore"} == set(phones)
            assert new.webhook_counts("loja-1")["pending"] >= pending
        finally:
            new.close()
    finally:
        zv.cli("shutdown", check=False)  # its runners let go of the database first
        pg_cluster.drop_database(first)
        pg_cluster.drop_database(second)


def _members(blob: bytes) -> dict[str, bytes]:
    out = {}
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        for info in tar:
            fh = tar.extractfile(info)
            assert fh is not None
            out[info.name] = fh.read()
    return out


def _repacked(blob: bytes, name: str, data: bytes) -> bytes:
    """The archive with member ``name`` changed and its manifest's digests made to
    match: a well-formed archive whose contents are wrong."""
    members = _members(blob)
    manifest = json.loads(members.pop(backup_archive.MANIFEST))
    members[name] = data
    manifest["members"] = {n: hashlib.sha256(d).hexdigest() for n, d in members.items()}
    return _tar({**members, backup_archive.MANIFEST: json.dumps(manifest).encode()})


def test_a_bad_format_2_backup_is_refused_and_changes_nothing(
    pg_cluster: PgCluster, make_env: Callable[..., Env]
) -> None:
    """Truncated, flipped, or well-formed with wrong store auth or a bad event line:
    each refused with one line, the new database and state dir left as they were.
    In-process (no runner needed: a refused restore starts nothing)."""
    first, second = pg_cluster.new_database(), pg_cluster.new_database()
    env = make_env()
    src, dst = PostgresStore(pg_cluster.dsn(first)), PostgresStore(pg_cluster.dsn(second))
    orch = Orchestrator(env.settings(database_url=pg_cluster.dsn(first), host_id="h1"))
    try:
        ports = range(env.base_port, env.base_port + env.max_sessions)
        src.create_session(
            NewSession(name="loja", connector="sim"),
            host="h1", ports=ports, exclude_ports=(), max_sessions=10, actor="t",
        )  # fmt: skip
        src.set_failover("loja", auth=AuthKind.STORE, failover=None, actor="t")
        src.save_sim_auth("loja", "dev-1", "5511999990000")
        src.enqueue_webhook(new_event("loja", "qr_code", {"qr": "x"}))
        archive = env.home.parent / "good.tar.gz"
        assert orch.backup(archive).store_auth == 1
        blob = archive.read_bytes()
        orch.close()
        orch = Orchestrator(env.settings(database_url=pg_cluster.dsn(second), host_id="h1"))
        before = sorted(p.name for p in env.home.iterdir())
        ghost = [{"kind": "sim", "session_name": "ghost", "device": "d", "phone": "1"}]
        other = [{"kind": "whatsmeow", "session_name": "loja", "jid": "1:2@s.whatsapp.net"}]
        lines = _members(blob)[backup_archive.WEBHOOK_LINES]
        assert lines.count(b"\n") == 1
        bad = {
            "truncated": blob[: len(blob) // 2],
            "cut short": blob[:-10],
            "flipped": bytes(b ^ 0xFF if i == len(blob) // 3 else b for i, b in enumerate(blob)),
            "ghost auth": _repacked(blob, backup_archive.STORE_AUTH, json.dumps(ghost).encode()),
            "unknown auth": _repacked(blob, backup_archive.STORE_AUTH, json.dumps(other).encode()),
            "bad line": _repacked(blob, backup_archive.WEBHOOK_LINES, lines + b"not json\n"),
        }
        why = {}
        for case, data in bad.items():
            path = env.home.parent / f"{case.replace(' ', '-')}.tar.gz"
            path.write_bytes(data)
            with pytest.raises(ArchiveError) as caught:
                orch.restore(path)
            why[case] = str(caught.value)
            assert "\n" not in why[case]
            assert dst.list_sessions() == [] and dst.sim_auth("loja") is None, case
            assert sorted(p.name for p in env.home.iterdir()) == before, case
        assert "truncated" in why["truncated"] and "corrupt" in why["flipped"]
        assert "belongs to no session" in why["ghost auth"]
        assert "newer zapvisor" in why["unknown auth"]
        assert "line 2 of its webhooks.jsonl is not JSON" in why["bad line"]
        assert dst.list_events(limit=10) == []
    finally:
        orch.close()
        src.close()
        dst.close()
        pg_cluster.drop_database(first)
        pg_cluster.drop_database(second)
