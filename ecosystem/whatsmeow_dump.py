"""whatsmeow's rows of a neonize device whose auth lives in the store, out of the fleet's
PostgreSQL and into a backup (``whatsmeow.jsonl``); ecosystem/whatsmeow_restore.py puts
them back.

Which tables hold a device is read from the live schema, not listed here, so a newer
whatsmeow's tables come along: ``whatsmeow_device`` (by ``jid``), every table whose
foreign key reaches it, directly (``whatsmeow_pre_keys.jid``,
``whatsmeow_sessions.our_jid``…) or through another such table
(``whatsmeow_app_state_mutation_macs`` through ``whatsmeow_app_state_version``), and the
whatsmeow tables with an ``our_jid`` column but no foreign key (``whatsmeow_privacy_tokens``
in schema 15: it does not cascade with the device). ``whatsmeow_lid_map`` is shared by
every device: a device takes the rows of its own number and of its contacts' numbers.
``whatsmeow_version`` comes first, so a restore can name the schema the rows came from.

One line a row: ``{"table", "device", "row", "bytea"}``; ``bytea`` names the row's
columns that are base64 of the bytes (keys: exact bytes both ways). Integers and
booleans are JSON's own; anything else travels as PostgreSQL's text of it
(``uuid``, and whatever type a later whatsmeow adds), which PostgreSQL parses back.
The rows are keys to WhatsApp accounts: they go only into the archive (0600, sealed
on request), never into a message.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from ecosystem.errors import StoreError, ZapvisorError
from ecosystem.lease import AuthKind
from ecosystem.session import Session

NEONIZE = "neonize"
DEVICE = "whatsmeow_device"
VERSION = "whatsmeow_version"
LID_MAP = "whatsmeow_lid_map"
SHARED = (VERSION, LID_MAP)
"""whatsmeow's tables that belong to no one device."""
PLAIN = {"smallint", "integer", "bigint", "boolean", "text", "character varying"}
"""Column types that travel as JSON's own values; bytea as base64, others as text."""
CONNECT_TIMEOUT = 5

_FOREIGN_KEYS = """
SELECT child.relname, child_col.attname, parent.relname, parent_col.attname
FROM pg_constraint con
JOIN pg_class child ON child.oid = con.conrelid
JOIN pg_class parent ON parent.oid = con.confrelid
CROSS JOIN LATERAL unnest(con.conkey, con.confkey) AS k(child_num, parent_num)
JOIN pg_attribute child_col ON child_col.attrelid = con.conrelid
    AND child_col.attnum = k.child_num
JOIN pg_attribute parent_col ON parent_col.attrelid = con.confrelid
    AND parent_col.attnum = k.parent_num
WHERE con.contype = 'f' AND child.relnamespace = current_schema()::regnamespace
    AND child.relname LIKE 'whatsmeow\\_%' AND parent.relname LIKE 'whatsmeow\\_%'
ORDER BY child.relname, con.conname
"""
_COLUMNS = """
SELECT table_name, column_name, data_type FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name LIKE 'whatsmeow\\_%'
ORDER BY table_name, ordinal_position
"""
_LID_ROWS = """
WITH users AS (
    SELECT split_part(split_part(jid, '@', 1), ':', 1) AS u FROM whatsmeow_device
        WHERE jid = %(jid)s
    UNION SELECT split_part(split_part(lid, '@', 1), ':', 1) FROM whatsmeow_device
        WHERE jid = %(jid)s AND lid IS NOT NULL
    UNION SELECT split_part(their_jid, '@', 1) FROM whatsmeow_contacts
        WHERE our_jid = %(jid)s
)
SELECT lid, pn FROM whatsmeow_lid_map
WHERE lid IN (SELECT u FROM users) OR pn IN (SELECT u FROM users)
ORDER BY lid
"""


@dataclass(frozen=True)
class Schema:
    """whatsmeow's tables in one database, as far as a device's rows go."""

    columns: dict[str, dict[str, str]]
    """Each whatsmeow table's columns and their types, in table order."""
    keys: dict[str, str] = field(default_factory=dict)
    """Each table holding a device's rows → its column naming the device, parents
    before children (the order rows can be inserted in)."""

    @property
    def present(self) -> bool:
        return DEVICE in self.columns


def connect(dsn: str, what: str) -> psycopg.Connection[tuple[Any, ...]]:
    try:
        return psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT)
    except psycopg.Error as exc:
        cause = why(dsn, exc)
        raise StoreError(f"cannot reach whatsmeow's auth store to {what}: {cause}") from None


def why(dsn: str, exc: psycopg.Error) -> str:
    """psycopg's reason for not connecting, in one line without the password: for a
    string it cannot parse it quotes the faulty part, which may be the password (a '%'
    not percent-encoded) or the whole string."""
    from psycopg.conninfo import conninfo_to_dict

    from ecosystem.store import pgcommon

    try:
        password = conninfo_to_dict(dsn).get("password")
    except psycopg.Error:
        return (
            "ZAPVISOR_DATABASE_URL is not a PostgreSQL connection string: expected "
            "postgresql://user:password@host:5432/dbname (percent-encode special characters "
            "in the password)"
        )
    cause = pgcommon.first_line(str(exc)).removeprefix("connection failed: ")
    return pgcommon.redact(cause, [str(password or ""), dsn])


def read_schema(conn: psycopg.Connection[tuple[Any, ...]]) -> Schema:
    columns: dict[str, dict[str, str]] = {}
    for table, column, kind in conn.execute(_COLUMNS):
        columns.setdefault(table, {})[column] = kind
    if DEVICE not in columns:
        return Schema(columns)
    keys = {DEVICE: "jid"}
    edges = conn.execute(_FOREIGN_KEYS).fetchall()
    grown = True
    while grown:  # a table joins once its parent did: parents stay before children
        grown = False
        for child, child_col, parent, parent_col in edges:
            if child not in keys and keys.get(parent) == parent_col:
                keys[child] = child_col
                grown = True
    for table, cols in columns.items():
        if table not in keys and table not in SHARED and "our_jid" in cols:
            keys[table] = "our_jid"
    return Schema(columns, keys)


def delete_devices(
    conn: psycopg.Connection[tuple[Any, ...]], schema: Schema, jids: Sequence[str]
) -> int:
    """The devices' rows gone from every table, children first (not all of them
    cascade with whatsmeow_device); how many devices there were."""
    removed = 0
    for table, column in reversed(schema.keys.items()):
        query = sql.SQL("DELETE FROM {} WHERE {} = ANY(%s)")
        cur = conn.execute(
            query.format(sql.Identifier(table), sql.Identifier(column)), (list(jids),)
        )
        removed = cur.rowcount  # whatsmeow_device's, the last
    return removed


def store_devices(sessions: Sequence[Session]) -> dict[str, str]:
    """The neonize sessions whose auth lives in whatsmeow's store: device JID → name."""
    return {
        s.device_jid: s.name
        for s in sessions
        if s.connector == NEONIZE and s.auth == AuthKind.STORE and s.device_jid
    }


@dataclass
class Dump:
    """whatsmeow's rows of ``sessions``' devices, one line at a time (``lines``), and
    what it found."""

    dsn: str | None = field(repr=False)  # holds the password
    sessions: Sequence[Session]
    progress: Callable[[str], None]
    devices: list[str] = field(default_factory=list)
    """The devices dumped."""
    rows: int = 0

    def lines(self) -> Iterator[dict[str, Any]]:
        wanted = store_devices(self.sessions)
        if not wanted:
            return
        if not self.dsn or not self.dsn.startswith("postgres"):
            names = ", ".join(sorted(wanted.values()))
            raise ZapvisorError(
                f"sessions {names} keep their WhatsApp auth in whatsmeow's PostgreSQL "
                "tables: set ZAPVISOR_DATABASE_URL to that database to back them up"
            )
        with connect(self.dsn, "back it up") as conn:
            # one snapshot: a runner writing meanwhile never gives half a device
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                yield from self._rows(conn, wanted)
            except psycopg.Error as exc:
                raise StoreError(f"cannot read whatsmeow's auth store: {exc}") from None

    def _rows(
        self, conn: psycopg.Connection[tuple[Any, ...]], wanted: dict[str, str]
    ) -> Iterator[dict[str, Any]]:
        schema = read_schema(conn)
        found = set()
        if schema.present:
            listed = list(wanted)
            got = conn.execute("SELECT jid FROM whatsmeow_device WHERE jid = ANY(%s)", (listed,))
            found = {jid for (jid,) in got}
        for jid, name in wanted.items():
            if jid not in found:
                self.progress(
                    f"warning: session {name}'s device {jid} is not in whatsmeow's tables: "
                    "it will need a new QR after a restore"
                )
        if not found:
            return
        if VERSION in schema.columns:
            yield from self._table(conn, schema, VERSION, None)
        for jid in wanted:
            if jid not in found:
                continue
            for table in schema.keys:
                yield from self._table(conn, schema, table, jid)
            if LID_MAP in schema.columns and _has_lid_columns(schema):
                yield from self._table(conn, schema, LID_MAP, jid)
            self.devices.append(jid)

    def _table(
        self,
        conn: psycopg.Connection[tuple[Any, ...]],
        schema: Schema,
        table: str,
        jid: str | None,
    ) -> Iterator[dict[str, Any]]:
        types = schema.columns[table]
        names = ["lid", "pn"] if table == LID_MAP else list(types)
        fields = sql.SQL(", ").join(
            sql.Identifier(c) if types[c] in PLAIN or types[c] == "bytea" else _as_text(c)
            for c in names
        )
        query: sql.Composable
        if table == LID_MAP:
            query = sql.SQL(_LID_ROWS)
        elif jid is None:
            query = sql.SQL("SELECT {} FROM {}").format(fields, sql.Identifier(table))
        else:
            query = sql.SQL("SELECT {} FROM {} WHERE {} = %(jid)s").format(
                fields, sql.Identifier(table), sql.Identifier(schema.keys[table])
            )
        bytea = [c for c in names if types[c] == "bytea"]
        for values in conn.execute(query, {"jid": jid} if jid is not None else None):
            row = dict(zip(names, values, strict=True))
            for c in bytea:
                if row[c] is not None:
                    row[c] = base64.b64encode(row[c]).decode("ascii")
            self.rows += 1
            line: dict[str, Any] = {"table": table, "row": row, "bytea": bytea}
            if jid is not None:
                line["device"] = jid
            yield line


def _as_text(column: str) -> sql.Composable:
    return sql.SQL("{}::text").format(sql.Identifier(column))


def _has_lid_columns(schema: Schema) -> bool:
    """The columns _LID_ROWS reads are there (whatsmeow's schema 8 and later)."""
    return (
        set(schema.columns.get(LID_MAP, {})) == {"lid", "pn"}
        and "lid" in schema.columns[DEVICE]
        and "their_jid" in schema.columns.get("whatsmeow_contacts", {})
    )
