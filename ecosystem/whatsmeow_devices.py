"""whatsmeow's own tables in the fleet's PostgreSQL, as far as zapvisor looks at them.

A neonize session whose auth lives in the store keeps its WhatsApp device in whatsmeow's
tables of the fleet's database (created by whatsmeow itself), keyed by the device JID
kept in the session's row (``whatsapp_sessions.device_jid``). zapvisor only asks whether
a device is still there (neonize 0.5.2 crashes the whole process, a Go nil-pointer
panic, when it is asked to open a JID whatsmeow does not hold) and removes one whose
session is deleted: most tables holding a device's keys, sessions and contacts refer
to ``whatsmeow_device`` ON DELETE CASCADE (checked against whatsmeow's schema v7+), but
not all (``whatsmeow_privacy_tokens`` has no foreign key), so the device's rows go from
every table that holds them, as the live schema says (ecosystem/whatsmeow_dump.py).
``whatsmeow_lid_map`` is shared by every device and stays.

The DSN is the fleet's ZAPVISOR_DATABASE_URL (a secret: never in a message).
"""

from __future__ import annotations

import psycopg
from psycopg import errors

from ecosystem.errors import StoreError
from ecosystem.lease import AuthKind
from ecosystem.session import Session
from ecosystem.whatsmeow_dump import delete_devices, read_schema, why

CONNECT_TIMEOUT = 5


def _connect(dsn: str) -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT, autocommit=True)
    except psycopg.Error as exc:
        raise StoreError(f"cannot reach whatsmeow's auth store: {why(dsn, exc)}") from None


def device_present(dsn: str, jid: str) -> bool:
    """Whether whatsmeow's store holds the device ``jid`` ("user:device@server")."""
    with _connect(dsn) as conn:
        try:
            row = conn.execute("SELECT 1 FROM whatsmeow_device WHERE jid = %s", (jid,)).fetchone()
        except errors.UndefinedTable:
            return False  # whatsmeow never ran on this database
        except psycopg.Error as exc:
            raise StoreError(f"cannot read whatsmeow's auth store: {exc}") from None
    return row is not None


def forget_device(dsn: str, jid: str) -> bool:
    """Delete the device ``jid`` and everything whatsmeow keeps for it; False when it
    was not there."""
    with _connect(dsn) as conn:
        try:
            with conn.transaction():
                schema = read_schema(conn)
                return schema.present and delete_devices(conn, schema, [jid]) > 0
        except psycopg.Error as exc:
            raise StoreError(f"cannot remove the device in whatsmeow's auth store: {exc}") from None


def forget_session_device(session: Session, dsn: str | None) -> str | None:
    """Remove the device of a store-auth neonize session that is deleted, or logged out
    with no runner to tell WhatsApp (its row no longer names the device: nothing else
    ever opens it). The device removed, or None when there was none."""
    jid = session.device_jid
    if session.auth != AuthKind.STORE or not jid or not dsn or not dsn.startswith("postgres"):
        return None
    try:
        return jid if forget_device(dsn, jid) else None
    except StoreError as exc:
        raise StoreError(
            f"session {session.name}'s device {jid} stays in whatsmeow's tables: {exc}"
        ) from None
