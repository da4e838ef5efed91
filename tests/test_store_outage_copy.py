"""A PostgreSQL outage in the middle of a run, and `zapvisor db copy` out of SQLite."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from ecosystem import runner_client
from ecosystem.conversations import ChatMessage
from ecosystem.health.model import AlertKind, NewAlert, SessionHealth
from ecosystem.models import utcnow
from ecosystem.store.postgres import PostgresStore
from ecosystem.store.sqlite import SQLiteStore
from tests.conftest import Env, free_port_block, teardown_env, wait_for
from tests.pgserver import PASSWORD, PgServer, find_bin

pytestmark = pytest.mark.e2e


@pytest.fixture
def own_server() -> Iterator[PgServer]:
    """A PostgreSQL of this test's own, since the test stops and starts it."""
    if find_bin() is None:
        pytest.skip("PostgreSQL is not installed here (./scripts/test installs it with apt)")
    server = PgServer(free_port_block(1))
    try:
        server.start()
        yield server
    finally:
        server.destroy()


def test_postgres_outage_fails_loudly_then_carries_on(
    own_server: PgServer, make_env: Callable[..., Env]
) -> None:
    zv = make_env(ZAPVISOR_DATABASE_URL=own_server.dsn())
    try:
        zv.cli("db", "migrate")
        # local auth: a session whose auth lives in the store cannot pair without it (and
        # lets go of WhatsApp when it cannot renew its lease: test_failover_e2e.py)
        zv.json("create", "alpha", "--connector", "sim", "--auth", "local")
        wait_for(lambda: zv.json("show", "alpha")["status"] == "waiting_scan", timeout=30)

        own_server.stop()
        where = f"postgres store at 127.0.0.1:{own_server.port}/postgres"
        for args in (("list", "--json"), ("create", "beta"), ("show", "alpha")):
            res = zv.cli(*args, check=False)
            assert res.returncode == 69, (args, res.stderr)
            lines = res.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("zapvisor: error: ")
            assert f"the {where} is unreachable: " in lines[0] and "refused" in lines[0]
            assert PASSWORD not in res.stderr + res.stdout
        status = zv.cli("db", "status", check=False)
        assert status.returncode == 69 and where in status.stderr

        # The runner keeps serving; the phone pairs while the store is down.
        token = (zv.home / "secrets" / "alpha.token").read_text().strip()
        code, _ = runner_client.call(
            "127.0.0.1", zv.base_port, "/sim/scan", method="POST", token=token
        )
        assert code == 200
        wait_for(
            lambda: (
                runner_client.call("127.0.0.1", zv.base_port, "/status", token=token)[1]["status"]
                == "connected"
            )
        )

        own_server.start()
        # The runner's pending write lands; nothing typed or reported was lost.
        wait_for(lambda: zv.json("show", "alpha")["status"] == "connected", timeout=90)
        assert zv.json("create", "beta", "--connector", "sim")["port"] == zv.base_port + 1
        assert [s["name"] for s in zv.json("list")] == ["alpha", "beta"]
    finally:
        teardown_env(zv)  # while PostgreSQL still runs, so runners stop cleanly


def test_db_copy_moves_sessions_out_of_sqlite(pg_dsn: str, make_env: Callable[..., Env]) -> None:
    zv = make_env()
    zv.cli(
        "create",
        "cliente-001",
        "--connector",
        "sim",
        "--description",
        "Loja — centro",
        "--ai-config",
        '{"model": "m", "temperature": 0.5, "system_prompt": "Olá — ç"}',
        "--timing-config",
        '{"reply_delay": [1, 2], "typing": false}',
        "--webhook-url",
        "https://example.com/hook",
    )
    zv.cli("create", "cliente-002", "--connector", "sim", "--stopped")
    before = {s["name"]: s for s in zv.json("list")}

    # runners still report to SQLite: refused, nothing copied
    busy = zv.cli("db", "copy", "--to", "postgres", check=False, stdin="")
    assert busy.returncode != 0 and "zapvisor shutdown" in busy.stderr
    zv.cli("shutdown")
    # what the monitor and the outbox kept goes along (the runner already queued its
    # qr_code events for a receiver it cannot reach)
    old = SQLiteStore(zv.home / "zapvisor.db")
    old.save_health(SessionHealth(name="cliente-002", restarts=4, why_down="exit status 1"))
    old.raise_alert(NewAlert(host="h9", key="disk", kind=AlertKind.DISK, message="disk 90%"))
    outbox = old.list_webhooks("cliente-001", limit=1000)
    assert outbox, "the sim runner queued events"
    at = utcnow().replace(microsecond=123000)  # the stores keep milliseconds
    chat = [
        ChatMessage(role="user", body="oi, tudo bem?", wa_id="W1", created_at=at),
        ChatMessage(role="assistant", body="Tudo! Em que posso ajudar?", created_at=at),
    ]
    for message in chat:
        old.add_message("cliente-001", "5511@c.us", message)
    old.record_bot_error("cliente-001", "5522@c.us", "openai: 429 rate limited", utcnow())
    conversations = old.list_conversations("cliente-001")
    old.close()

    # the same machine, now pointed at PostgreSQL (zv's teardown stops its supervisord)
    moved = Env(zv.home, zv.base_port, zv.max_sessions, {"ZAPVISOR_DATABASE_URL": pg_dsn})
    report = moved.json("db", "copy", "--to", "postgres")
    assert report["sessions"] == ["cliente-001", "cliente-002"] and report["events"] >= 2
    assert (report["webhooks"], report["health"], report["alerts"]) == (len(outbox), 1, 1)
    assert report["conversations"] == 2
    target = PostgresStore(pg_dsn)
    try:
        assert target.list_webhooks("cliente-001", limit=1000) == outbox
        # the bot's conversations, with their messages in order and its last error
        assert target.list_conversations("cliente-001") == conversations
        assert target.recent_messages("cliente-001", "5511@c.us", 10) == chat
        assert target.bot_activity("cliente-001").last_error == "openai: 429 rate limited"
        assert target.get_health("cliente-002").restarts == 4
        assert [a.key for a in target.list_alerts("h9")] == ["disk"]
    finally:
        target.close()
    assert moved.json("db", "status")["store"] == "postgres"

    after = {s["name"]: s for s in moved.json("list")}
    assert after.keys() == before.keys()
    for name, row in before.items():
        for field in (
            "description",
            "port",
            "connector",
            "desired_state",
            "webhook_url",
            "ai_config",
            "timing_config",
            "created_at",
            "phone",
            "messages_sent",
        ):
            assert after[name][field] == row[field], (name, field)
    # the runner authenticates with the token whose hash was copied
    wait_for(lambda: moved.json("show", "cliente-001")["process_state"] == "RUNNING")
    token = (zv.home / "secrets" / "cliente-001.token").read_text().strip()
    code, _ = runner_client.call("127.0.0.1", zv.base_port, "/status", token=token)
    assert code == 200


def test_a_runner_started_during_an_outage_waits_for_the_store(
    own_server: PgServer, make_env: Callable[..., Env]
) -> None:
    """Exiting would let supervisord give up on the session (FATAL) for the length of a
    database outage; the runner waits for the store instead and then serves."""
    zv = make_env(ZAPVISOR_DATABASE_URL=own_server.dsn())
    try:
        zv.cli("db", "migrate")
        zv.json("create", "alpha", "--connector", "sim")
        own_server.stop()
        zv.cli("ctl", "restart", "wa-alpha")  # supervisorctl: no store needed
        pid = wait_for(lambda: _ctl_pid(zv, "wa-alpha"))
        assert not runner_client.healthy("127.0.0.1", zv.base_port)
        wait_for(lambda: "store_retry" in (zv.home / "logs" / "wa-alpha.log").read_text())
        assert _ctl_pid(zv, "wa-alpha") == pid, "the runner exited while the store was down"
        own_server.start()
        wait_for(lambda: runner_client.healthy("127.0.0.1", zv.base_port), timeout=60)
        assert _ctl_pid(zv, "wa-alpha") == pid
    finally:
        teardown_env(zv)


def _ctl_pid(zv: Env, program: str) -> int | None:
    out = zv.cli("ctl", "status", program, check=False).stdout
    if "RUNNING" not in out:
        return None
    return int(out.split("pid ")[1].split(",")[0])
