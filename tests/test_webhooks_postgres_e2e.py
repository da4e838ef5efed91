"""A runner on the postgres store delivers webhooks through the outbox in PostgreSQL: a
sim session under a real supervisord, a real PostgreSQL, a real HTTP receiver on
loopback. (tests/test_webhooks_e2e.py covers retries and kill -9 on the default store;
the outbox semantics are the same contract on every store: test_outbox_contract.py.)"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from ecosystem import webhook_events
from ecosystem.store.postgres import PostgresStore
from tests.conftest import Env, wait_for
from tests.receiver import Receiver
from tests.test_webhooks_e2e import api, paired
from tests.test_webhooks_e2e import receiver as receiver

pytestmark = pytest.mark.e2e


def test_a_runner_on_postgres_delivers_through_the_outbox(
    pg_dsn: str, make_env: Callable[..., Env], receiver: Receiver
) -> None:
    zv = make_env(ZAPVISOR_DATABASE_URL=pg_dsn)
    paired(zv, "pg-hooks", receiver.url)
    status, _ = api(
        zv, "pg-hooks", "POST", "/sim/inbound", {"from": "5511955554444", "body": "via postgres"}
    )
    assert status == 200
    got = wait_for(lambda: receiver.of("message_received"), timeout=30)
    assert len(got) == 1 and got[0].payload["message"]["body"] == "via postgres"
    secret = zv.cli("webhooks", "pg-hooks", "--secret").stdout.strip()
    delivery = got[0]
    assert webhook_events.verify(
        secret,
        delivery.headers["x-zapvisor-timestamp"],
        delivery.body,
        delivery.headers["x-zapvisor-signature"],
    )

    # every delivery went through PostgreSQL's outbox, and is recorded there
    store = PostgresStore(pg_dsn)
    try:
        wait_for(lambda: store.webhook_counts("pg-hooks")["pending"] == 0)
        counts = store.webhook_counts("pg-hooks")
        assert counts == {"pending": 0, "delivered": len(receiver.deliveries), "dead": 0}
        row = store.list_webhooks("pg-hooks", limit=100)
        assert delivery.payload["id"] in {r.event_id for r in row}
    finally:
        store.close()
    with psycopg.connect(pg_dsn) as conn:
        stored = conn.execute(
            "SELECT payload->'message'->>'body', state FROM webhook_outbox WHERE event_id = %s",
            (delivery.payload["id"],),
        ).fetchone()
    assert stored == ("via postgres", "delivered")
    # the CLI reads the same outbox, and the health monitor keeps its alerts there
    assert zv.json("webhooks", "pg-hooks")["counts"]["delivered"] == counts["delivered"]
    assert zv.json("alerts") == []
