"""A paired neonize device's rows in whatsmeow's real tables (created by whatsmeow itself,
through neonize's Go side, which reaches no WhatsApp server), as whatsmeow writes them
after a pairing and some use: keys are random bytes (opaque to everything but WhatsApp,
which cannot be reached from here). For the backup tests and scripts/bench.

Which table keys a device by which column is written out here by hand (whatsmeow's
schema 15), not discovered as the backup does, so the tests check the discovery."""

from __future__ import annotations

import random
import uuid
from typing import Any

import psycopg

KEYS = {
    "whatsmeow_device": "jid",
    "whatsmeow_pre_keys": "jid",
    "whatsmeow_sessions": "our_jid",
    "whatsmeow_identity_keys": "our_jid",
    "whatsmeow_contacts": "our_jid",
    "whatsmeow_sender_keys": "our_jid",
    "whatsmeow_app_state_sync_keys": "jid",
    "whatsmeow_app_state_version": "jid",
    "whatsmeow_app_state_mutation_macs": "jid",
    "whatsmeow_message_secrets": "our_jid",
    "whatsmeow_privacy_tokens": "our_jid",
    "whatsmeow_chat_settings": "our_jid",
    "whatsmeow_nct_salt": "our_jid",
}
"""Every whatsmeow table holding a device's rows → the column naming the device."""


def user(jid: str) -> str:
    return jid.split("@")[0].split(":")[0]


def fill_device(
    dsn: str,
    jid: str,
    *,
    pre_keys: int = 20,
    sessions: int = 5,
    contacts: int = 10,
    seed: int = 7,
) -> None:
    """One device and its rows in most of whatsmeow's tables (a NULL bytea, a uuid and
    text in other alphabets among them), with its own and its first contact's
    whatsmeow_lid_map rows (a number another device knows already stays as it is there,
    as whatsmeow keeps it)."""
    rnd = random.Random(f"{seed}:{jid}")

    def key(n: int = 32) -> bytes:
        return rnd.randbytes(n)

    lid = f"{rnd.randrange(10**14, 10**15)}"
    with psycopg.connect(dsn, autocommit=True) as conn, conn.transaction():
        conn.execute(
            "INSERT INTO whatsmeow_device (jid, lid, facebook_uuid, registration_id, noise_key,"
            " identity_key, signed_pre_key, signed_pre_key_id, signed_pre_key_sig, adv_key,"
            " adv_details, adv_account_sig, adv_account_sig_key, adv_device_sig, platform,"
            " push_name) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " %s, %s)",
            (
                jid,
                f"{lid}:7@lid",
                uuid.UUID(int=rnd.getrandbits(128)),
                rnd.getrandbits(31),
                key(),
                key(),
                key(),
                rnd.getrandbits(24),
                key(64),
                key(),
                key(180),
                key(64),
                key(),
                key(64),
                "android",
                "Loja Açaí ✓",
            ),
        )
        _many(conn, "whatsmeow_pre_keys", ("jid", "key_id", "key", "uploaded"),
              [(jid, i, key(), i % 3 != 0) for i in range(1, pre_keys + 1)])  # fmt: skip
        their = [f"55118{i:08d}" for i in range(max(sessions, contacts, 2))]
        chat = f"{their[0]}@s.whatsapp.net"
        _many(conn, "whatsmeow_sessions", ("our_jid", "their_id", "session"),
              [(jid, f"{t}.0", None if i == 0 else key(rnd.randrange(300, 900)))
               for i, t in enumerate(their[:sessions])])  # fmt: skip
        _many(conn, "whatsmeow_identity_keys", ("our_jid", "their_id", "identity"),
              [(jid, f"{t}.0", key()) for t in their[:sessions]])  # fmt: skip
        _many(conn, "whatsmeow_contacts", ("our_jid", "their_jid", "first_name", "push_name"),
              [(jid, f"{t}@s.whatsapp.net", f"Zé {i}", None if i % 2 else "Ана")
               for i, t in enumerate(their[:contacts])])  # fmt: skip
        _many(conn, "whatsmeow_sender_keys", ("our_jid", "chat_id", "sender_id", "sender_key"),
              [(jid, "1203630@g.us", f"{t}.0", key(120)) for t in their[:2]])  # fmt: skip
        _many(conn, "whatsmeow_app_state_sync_keys",
              ("jid", "key_id", "key_data", "timestamp", "fingerprint"),
              [(jid, key(6), key(), 1_700_000_000 + i, key(20)) for i in range(3)])  # fmt: skip
        names = ("regular", "critical_block")
        _many(conn, "whatsmeow_app_state_version", ("jid", "name", "version", "hash"),
              [(jid, n, 5 + i, key(128)) for i, n in enumerate(names)])  # fmt: skip
        _many(conn, "whatsmeow_app_state_mutation_macs",
              ("jid", "name", "version", "index_mac", "value_mac"),
              [(jid, n, 5, key(), key()) for n in names for _ in range(2)])  # fmt: skip
        _many(conn, "whatsmeow_message_secrets",
              ("our_jid", "chat_jid", "sender_jid", "message_id", "key"),
              [(jid, chat, chat, "3EB0A1", key())])  # fmt: skip
        _many(conn, "whatsmeow_privacy_tokens", ("our_jid", "their_jid", "token", "timestamp"),
              [(jid, chat, key(24), 1_700_000_000)])  # fmt: skip
        _many(conn, "whatsmeow_chat_settings", ("our_jid", "chat_jid", "muted_until", "pinned"),
              [(jid, f"{their[1]}@s.whatsapp.net", -1, True)])  # fmt: skip
        _many(conn, "whatsmeow_nct_salt", ("our_jid", "salt"), [(jid, key())])
        _many(conn, "whatsmeow_lid_map", ("lid", "pn"),
              [(lid, user(jid)), (f"9{lid[1:]}", their[0])])  # fmt: skip


def _many(
    conn: psycopg.Connection[Any], table: str, columns: tuple[str, ...], rows: list[Any]
) -> None:
    marks = ", ".join(["%s"] * len(columns))
    query = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) ON CONFLICT DO NOTHING"
    with conn.cursor() as cur:
        cur.executemany(query, rows)


def device_rows(dsn: str, jid: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row whatsmeow keeps for ``jid``, by table, in a stable order (bytea as
    bytes), and its whatsmeow_lid_map rows."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with psycopg.connect(dsn) as conn:
        for table, column in KEYS.items():
            rows = conn.execute(f"SELECT * FROM {table} WHERE {column} = %s", (jid,)).fetchall()
            out[table] = sorted(rows, key=repr)
        lid = conn.execute("SELECT lid FROM whatsmeow_device WHERE jid = %s", (jid,)).fetchone()
        mine = [user(jid), user(lid[0]) if lid and lid[0] else ""]
        mine += [user(t) for (t,) in conn.execute(
            "SELECT their_jid FROM whatsmeow_contacts WHERE our_jid = %s", (jid,))]  # fmt: skip
        rows = conn.execute(
            "SELECT lid, pn FROM whatsmeow_lid_map WHERE lid = ANY(%s) OR pn = ANY(%s)",
            (mine, mine),
        ).fetchall()
        out["whatsmeow_lid_map"] = sorted(rows)
    return out


def count_rows(dsn: str) -> dict[str, int]:
    """How many rows each whatsmeow table holds, all devices together."""
    with psycopg.connect(dsn) as conn:
        tables = [t for (t,) in conn.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = current_schema() AND table_name LIKE 'whatsmeow%'")]  # fmt: skip
        return {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
            for t in sorted(tables)
        }
