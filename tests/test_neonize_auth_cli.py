"""What an operator meets of a neonize session's auth, through the real `zapvisor` CLI
(a real supervisord, a real PostgreSQL): on a PostgreSQL store a new neonize session's
auth is in the store and `show` says it fails over; on SQLite it is local and `show`
says it cannot; a logout with no runner, or a delete, removes its device from whatsmeow's
tables; a runner whose device is gone stays up in status error. Sessions are created
stopped, and the one runner is the real runner with neonize's client standing in
(tests/neonize_standin.py): WhatsApp's servers cannot be reached from here, so the
device whatsmeow writes after a pairing is written by the test, as whatsmeow writes it."""

from __future__ import annotations

import signal
from collections.abc import Callable

from ecosystem import runner_client
from ecosystem.store.postgres import PostgresStore
from ecosystem.whatsmeow_devices import device_present
from runner.connectors.neonize_store import whatsmeow_dsn
from tests.conftest import Env, wait_for
from tests.test_neonize_auth_dsn import _whatsmeow_open, add_device
from tests.test_neonize_recycle import STOP_BUDGET, create, exit_within, standin

JID = "5511999999999:7@s.whatsapp.net"
OTHER = "5511888888888:4@s.whatsapp.net"


def test_on_postgresql_a_neonize_sessions_auth_is_in_the_store(
    pg_dsn: str, pg_store: PostgresStore, make_env: Callable[..., Env]
) -> None:
    env = make_env(max_sessions=3, ZAPVISOR_DATABASE_URL=pg_dsn, ZAPVISOR_HOST_ID="h1")
    env.cli("create", "sales", "--stopped")
    env.cli("create", "support", "--stopped")
    shown = env.json("show", "sales")
    assert (shown["connector"], shown["auth"], shown["can_fail_over"]) == ("neonize", "store", True)
    assert shown["device_jid"] is None, "not paired yet"
    assert "store: fails over to another host if h1 goes silent" in env.cli("show", "sales").stdout

    # paired earlier (as a runner reports it), its device in whatsmeow's tables
    assert _whatsmeow_open(whatsmeow_dsn(pg_dsn, {})) == ""
    for name, jid in (("sales", JID), ("support", OTHER)):
        add_device(pg_dsn, jid)
        pg_store.set_runtime(name, {"phone": jid.split(":")[0], "device_jid": jid}, actor="t")

    assert env.json("show", "sales")["device_jid"] == JID
    env.cli("logout", "sales", "--yes")  # no runner to tell WhatsApp: the device goes
    after = pg_store.get_session("sales")
    assert (after.phone, after.device_jid) == (None, None)
    assert device_present(pg_dsn, JID) is False
    assert device_present(pg_dsn, OTHER) is True, "another session's device stays"

    env.cli("delete", "support", "--yes")
    assert device_present(pg_dsn, OTHER) is False, "its rows went with the session"


def test_on_sqlite_a_neonize_sessions_auth_is_local(make_env: Callable[..., Env]) -> None:
    env = make_env(max_sessions=2)
    env.cli("create", "sales", "--stopped")
    assert env.json("show", "sales")["auth"] == "local"
    assert "cannot fail over" in env.cli("show", "sales").stdout
    refused = env.cli("create", "other", "--stopped", "--auth", "store", check=False)
    assert refused.returncode != 0 and "PostgreSQL or Supabase" in refused.stderr


def test_a_runner_whose_device_is_gone_stays_up_in_error_until_a_logout(
    pg_dsn: str, pg_store: PostgresStore, make_env: Callable[..., Env]
) -> None:
    """The real runner process (tests/neonize_standin.py: only neonize's client stands
    in): its row names a device whatsmeow does not hold. neonize would crash the process
    on it, and supervisord would start it again, forever; the runner stays up in status
    error instead, and a logout pairs a new device (a QR)."""
    env = make_env(max_sessions=2, ZAPVISOR_DATABASE_URL=pg_dsn, ZAPVISOR_HOST_ID="h1")
    port, token = create(env, "lost")
    assert _whatsmeow_open(whatsmeow_dsn(pg_dsn, {})) == ""  # whatsmeow's tables, no device
    pg_store.set_runtime("lost", {"phone": "5511999999999", "device_jid": JID}, actor="t")
    proc = standin(env, "lost", port)
    try:
        row = wait_for(lambda: (s := pg_store.get_session("lost")).status == "error" and s)
        assert row.last_error == (
            f"device {JID} not in the auth store (logged out elsewhere, or its rows "
            "deleted): pair again with `zapvisor logout lost`"
        )
        assert proc.poll() is None and runner_client.healthy("127.0.0.1", port, timeout=2.0)
        status, _ = runner_client.call("127.0.0.1", port, "/logout", method="POST", token=token)
        assert status == 200
        wait_for(lambda: pg_store.get_session("lost").status == "waiting_scan", timeout=15)
        assert pg_store.get_session("lost").device_jid is None
    finally:
        proc.send_signal(signal.SIGTERM)
        code, _ = exit_within(proc, STOP_BUDGET)
    assert code == 0
