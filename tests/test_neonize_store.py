"""Which store and device a neonize client opens (runner/connectors/neonize_store.py).

WhatsApp cannot be reached from here, so no client connects: these tests check the
arguments given to neonize 0.5.2's real NewAClient (built, never connected) and the
refusals, which is where the danger is (a shared auth database opened without a JID
drives its first device, maybe another session's account)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecosystem.errors import InvalidValue, RunnerError
from ecosystem.lease import AuthKind
from runner.connectors.neonize_store import ClientStore, client_store, parse_jid

DSN = "postgresql://zapvisor:pw@db.example:5432/zapvisor?sslmode=require"
"""Says its sslmode: whatsmeow gets it as it is (see test_neonize_auth_dsn.py)."""
DB = Path("/srv/zv/tokens/sales/neonize.db")


def test_local_auth_opens_the_sessions_own_file() -> None:
    got = client_store("sales", AuthKind.LOCAL, DB, dsn=DSN, device_jid=None, paired=True)
    assert got == ClientStore(str(DB))
    assert got.kwargs() == {"new_device": False}


def test_store_auth_opens_its_saved_device_in_postgres() -> None:
    got = client_store(
        "sales", AuthKind.STORE, DB, dsn=DSN, device_jid="5511999:7@s.whatsapp.net", paired=True
    )
    assert (got.name, got.jid, got.new_device) == (DSN, "5511999:7@s.whatsapp.net", False)
    from neonize.aioze.client import NewAClient

    client = NewAClient(got.name, uuid="sales-1", **got.kwargs())  # built, not connected
    assert client.name == DSN and client.new_device is False
    assert (client.jid.User, client.jid.Device, client.jid.Server) == (
        "5511999",
        7,
        "s.whatsapp.net",
    )
    # neonize names a client with a JID after its user, whatever uuid it was given
    assert client.uuid == b"5511999"


def test_store_auth_pairs_a_new_device_only_while_never_paired() -> None:
    got = client_store("sales", AuthKind.STORE, DB, dsn=DSN, device_jid=None, paired=False)
    assert (got.name, got.jid, got.new_device) == (DSN, None, True)
    assert got.kwargs() == {"new_device": True}
    with pytest.raises(RunnerError, match="device JID is not in the store") as refused:
        client_store("sales", AuthKind.STORE, DB, dsn=DSN, device_jid=None, paired=True)
    assert "zapvisor logout sales" in str(refused.value)
    assert "pw" not in str(refused.value)


@pytest.mark.parametrize(
    ("dsn", "why"),
    [
        (None, "must be PostgreSQL"),
        ("/srv/zv/zapvisor.db", "must be PostgreSQL"),
        ("postgresql://u:pw@pooler.supabase.com:6543/postgres", "transaction pooler"),
    ],
)
def test_store_auth_needs_a_postgres_it_can_lock(dsn: str | None, why: str) -> None:
    with pytest.raises(InvalidValue, match=why) as refused:
        client_store("sales", AuthKind.STORE, DB, dsn=dsn, device_jid="1@s.us", paired=True)
    assert "pw" not in str(refused.value), "the DSN's password is never in an error"


def test_jids_as_whatsmeow_writes_them_and_malformed_ones() -> None:
    agent = parse_jid("5511999.1:12@s.whatsapp.net")
    assert (agent.User, agent.RawAgent, agent.Device) == ("5511999", 1, 12)
    plain = parse_jid("5511999@s.whatsapp.net")
    assert (plain.User, plain.RawAgent, plain.Device) == ("5511999", 0, 0)
    for bad in ("", "5511999", "@s.whatsapp.net", "5511999:x@s.whatsapp.net", "a.b:1@"):
        with pytest.raises(InvalidValue, match="not a WhatsApp device JID"):
            parse_jid(bad)
    with pytest.raises(InvalidValue):
        client_store("s", AuthKind.STORE, DB, dsn=DSN, device_jid="55:x@s", paired=True)


def test_new_client_opens_what_it_is_given() -> None:
    """runner/connectors/neonize_client.new_client, the one place a client is built."""
    from runner.connectors.neonize_client import new_client

    own = new_client(str(DB), "sales#1", "sales")
    assert (own.name, own.jid, own.new_device, own.uuid) == (str(DB), None, False, b"sales#1")
    assert own.device_props.os == "zapvisor sales"
    pairing = client_store("sales", AuthKind.STORE, DB, dsn=DSN, device_jid=None, paired=False)
    fresh = new_client(str(DB), "sales#2", "sales", pairing)
    assert (fresh.name, fresh.jid, fresh.new_device) == (DSN, None, True)
    saved = client_store(
        "sales", AuthKind.STORE, DB, dsn=DSN, device_jid="5511999:3@s.whatsapp.net", paired=True
    )
    mine = new_client(str(DB), "sales#3", "sales", saved)
    assert (mine.name, mine.jid.User, mine.jid.Device, mine.new_device) == (
        DSN,
        "5511999",
        3,
        False,
    )
