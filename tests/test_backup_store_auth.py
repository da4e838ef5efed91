"""`zapvisor backup` / `restore` of sessions whose WhatsApp auth lives in the store, for
real: sim sessions on a real supervisord and a real PostgreSQL, the CLI as separate
processes. The backup is restored into a new database after the first one and the
state dir are gone, as on a fresh machine. The WhatsApp side is the sim connector (no
WhatsApp here); its simulated server lives in the store."""

from __future__ import annotations

import shutil
from collections.abc import Callable

import pytest

from ecosystem.store.postgres import PostgresStore
from tests.conftest import Env, PgCluster, free_port_block, wait_for

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
