"""The DSN whatsmeow's PostgreSQL store gets (runner/connectors/neonize_store.py
``whatsmeow_dsn``), and the device check before a client opens it.

whatsmeow reaches PostgreSQL through Go's lib/pq, which reads a DSN without sslmode as
``require``; the test server (tests/pgserver.py) has no TLS, as many a private database
has not. The last tests use neonize's real Go side against that real PostgreSQL
(``GetAllDevices`` opens whatsmeow's store and creates its tables, and reaches no
WhatsApp server, which cannot be reached from here)."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator

import psycopg
import pytest

from ecosystem.whatsmeow_devices import device_present, forget_device
from runner.connectors.neonize_store import whatsmeow_dsn
from tests.conftest import PgCluster

JID = "5511999999999:7@s.whatsapp.net"


@pytest.mark.parametrize(
    ("dsn", "env", "expected"),
    [
        # loopback and unix sockets: nothing to protect, no TLS asked
        ("postgresql://u:p%40w@127.0.0.1:5432/db", {}, "postgresql://u:p%40w@127.0.0.1:5432/db?sslmode=disable"),
        ("postgresql://u@localhost/db?connect_timeout=5", {}, "postgresql://u@localhost/db?connect_timeout=5&sslmode=disable"),
        ("postgresql://u@[::1]:5433/db", {}, "postgresql://u@[::1]:5433/db?sslmode=disable"),
        ("postgresql:///db?host=/run/postgresql", {}, "postgresql:///db?host=/run/postgresql&sslmode=disable"),
        ("postgresql:///db", {}, "postgresql:///db?sslmode=disable"),
        # another host: libpq's default, what the fleet's own connection does
        ("postgres://u:p@db.example.com:5432/zv", {}, "postgres://u:p@db.example.com:5432/zv?sslmode=prefer"),
        ("postgresql://u:p@10.0.0.5/zv", {}, "postgresql://u:p@10.0.0.5/zv?sslmode=prefer"),
        ("postgresql:///db", {"PGHOST": "db.example.com"}, "postgresql:///db?sslmode=prefer"),
        # said by the operator: as it is, whatever the host
        ("postgresql://u@127.0.0.1/db?sslmode=require", {}, "postgresql://u@127.0.0.1/db?sslmode=require"),
        ("postgresql://u@db.example.com/db?sslmode=disable", {}, "postgresql://u@db.example.com/db?sslmode=disable"),
        ("postgresql://u@127.0.0.1/db", {"PGSSLMODE": "verify-full"}, "postgresql://u@127.0.0.1/db"),
    ],
)  # fmt: skip
def test_the_sslmode_rule(dsn: str, env: dict[str, str], expected: str) -> None:
    assert whatsmeow_dsn(dsn, env) == expected


def _whatsmeow_open(dsn: str) -> str:
    """What neonize's Go side says opening whatsmeow's store at ``dsn``: "" when it
    opened (and created whatsmeow's tables), else "error: ..."."""
    from neonize._binder import func_callback_bytes2, gocode
    from neonize.utils.log import log_whatsmeow

    callback = func_callback_bytes2(log_whatsmeow)
    out = gocode.GetAllDevices(dsn.encode(), callback)
    return ctypes.string_at(out).decode() if isinstance(out, int) else out.decode()


@pytest.fixture
def fleet_dsn(pg_cluster: PgCluster) -> Iterator[str]:
    """A database of its own on the test server, which has no TLS."""
    name = pg_cluster.new_database()
    yield pg_cluster.dsn(name)
    pg_cluster.drop_database(name)


def test_whatsmeow_opens_the_fleets_database_only_with_the_rule(fleet_dsn: str) -> None:
    assert "127.0.0.1" in fleet_dsn and "sslmode" not in fleet_dsn
    with psycopg.connect(fleet_dsn):  # psycopg (libpq, prefer) connects as it is
        pass
    refused = _whatsmeow_open(fleet_dsn)
    assert "SSL is not enabled on the server" in refused, refused
    assert "zv-test-pw" not in refused
    assert _whatsmeow_open(whatsmeow_dsn(fleet_dsn, {})) == ""
    # the other host's rule, prefer, also connects to a server without TLS
    assert _whatsmeow_open(f"{fleet_dsn}?sslmode=prefer") == ""


def test_a_device_is_checked_in_whatsmeows_own_tables_and_removed_with_its_rows(
    fleet_dsn: str,
) -> None:
    assert device_present(fleet_dsn, JID) is False, "whatsmeow never ran here: no tables"
    assert _whatsmeow_open(whatsmeow_dsn(fleet_dsn, {})) == ""  # whatsmeow's schema
    assert device_present(fleet_dsn, JID) is False
    add_device(fleet_dsn, JID)
    with psycopg.connect(fleet_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO whatsmeow_contacts (our_jid, their_jid, push_name) VALUES (%s, %s, %s)",
            (JID, "5511888888888@s.whatsapp.net", "Ana"),
        )
        conn.execute(  # no foreign key to the device: it does not cascade
            "INSERT INTO whatsmeow_privacy_tokens (our_jid, their_jid, token, timestamp)"
            " VALUES (%s, %s, %s, 1)",
            (JID, "5511888888888@s.whatsapp.net", b"\x09" * 24),
        )
    assert device_present(fleet_dsn, JID) is True
    assert device_present(fleet_dsn, "5511999999999:8@s.whatsapp.net") is False
    # neonize's Go side lists the device zapvisor sees
    assert _whatsmeow_open(whatsmeow_dsn(fleet_dsn, {})).startswith(f"{JID},")
    assert forget_device(fleet_dsn, JID) is True
    assert device_present(fleet_dsn, JID) is False
    with psycopg.connect(fleet_dsn) as conn:
        left = conn.execute(
            "SELECT (SELECT count(*) FROM whatsmeow_contacts),"
            " (SELECT count(*) FROM whatsmeow_privacy_tokens)"
        ).fetchone()
    assert left == (0, 0), "whatsmeow's rows of the device go with it, cascading or not"
    assert forget_device(fleet_dsn, JID) is False


def add_device(dsn: str, jid: str) -> None:
    """A device row as whatsmeow writes one after a pairing (keys are opaque bytes to
    everything but WhatsApp, which is never reached here)."""
    key = b"\x01" * 32
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO whatsmeow_device (jid, registration_id, noise_key, identity_key,"
            " signed_pre_key, signed_pre_key_id, signed_pre_key_sig, adv_key, adv_details,"
            " adv_account_sig, adv_account_sig_key, adv_device_sig)"
            " VALUES (%s, 1, %s, %s, %s, 1, %s, %s, %s, %s, %s, %s)",
            (jid, key, key, key, b"\x02" * 64, key, b"\x03", b"\x04" * 64, key, b"\x05" * 64),
        )
