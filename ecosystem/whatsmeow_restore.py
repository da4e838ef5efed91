"""whatsmeow's rows of a backup (``whatsmeow.jsonl``, ecosystem/whatsmeow_dump.py) back
into the fleet's PostgreSQL, so a neonize session whose auth lives in the store opens
its own device again: no new QR.

In three steps, the archive read again at each (never held in memory):
``checked`` reads only the archive (every line well formed, base64 that decodes, each
device the ``device_jid`` of one of its neonize sessions with store auth, and its
``whatsmeow_device`` row there); ``Target.prepare`` looks at the database: whatsmeow's
tables, created by whatsmeow itself when they are missing (neonize's Go side opens the
store and upgrades it, as a runner's first start would; no WhatsApp server is reached),
every table and column of the rows there, each row naming its own device, parents
before children, and no device already there unless replaced; ``Target.write`` then
inserts them all in one transaction. A store whatsmeow cannot use (SQLite, or Supabase
without ZAPVISOR_DATABASE_URL) is refused: those sessions could not run there.
"""

from __future__ import annotations

import base64
import binascii
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from ecosystem.backup_archive import WHATSMEOW, ArchiveError, Contents
from ecosystem.errors import StoreError, ZapvisorError
from ecosystem.session import Session
from ecosystem.store.pgcommon import redact
from ecosystem.whatsmeow_dsn import whatsmeow_dsn
from ecosystem.whatsmeow_dump import (
    DEVICE,
    LID_MAP,
    SHARED,
    VERSION,
    Schema,
    connect,
    delete_devices,
    read_schema,
    store_devices,
)

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
CREATE_TIMEOUT = 120.0
_CREATE = """
import ctypes, sys
from neonize._binder import func_callback_bytes2, gocode
from neonize.utils.log import log_whatsmeow
out = gocode.GetAllDevices(sys.stdin.read().encode(), func_callback_bytes2(log_whatsmeow))
text = ctypes.string_at(out).decode() if isinstance(out, int) else out.decode()
if text.startswith("error"):
    sys.exit(text.strip().splitlines()[-1])
"""
"""Has whatsmeow open (and so create or upgrade) its store at the DSN read on stdin (a
secret: never on a command line), in a process of its own: neonize's Go side cannot
be unloaded, and a panic there takes only that process."""


@dataclass(frozen=True)
class Line:
    table: str
    device: str | None
    row: dict[str, Any]
    """Values as they go to PostgreSQL (bytea decoded to bytes)."""


@dataclass
class Plan:
    """What the archive holds for whatsmeow, checked."""

    devices: dict[str, str] = field(default_factory=dict)
    """Device JID → its session's name."""
    versions: list[dict[str, Any]] = field(default_factory=list)


def _lines(contents: Contents) -> Iterator[Line]:
    for n, raw in enumerate(contents.whatsmeow_rows(), 1):
        where = f"line {n} of its {WHATSMEOW}"
        table, device, row, bytea = (raw.get(k) for k in ("table", "device", "row", "bytea"))
        if (
            not isinstance(table, str)
            or not table.startswith("whatsmeow_")
            or not _NAME.match(table)
        ):
            raise ArchiveError(f"{where} names no whatsmeow table")
        if not isinstance(row, dict) or not row or not all(map(_NAME.match, row)):
            raise ArchiveError(f"{where} holds no row of {table}")
        if not all(v is None or isinstance(v, (bool, int, str)) for v in row.values()):
            raise ArchiveError(f"{where} holds a value that is not one of a row")
        if not isinstance(bytea, list) or not all(isinstance(c, str) and c in row for c in bytea):
            raise ArchiveError(f"{where} names bytes columns its row does not have")
        if (device is None) != (table == VERSION) or not isinstance(device, (str, type(None))):
            raise ArchiveError(f"{where} does not say which device it belongs to")
        for column in bytea:
            if row[column] is None:
                continue
            try:
                row[column] = base64.b64decode(str(row[column]), validate=True)
            except (binascii.Error, ValueError):
                raise ArchiveError(f"{where}: its {column} is not base64") from None
        yield Line(table, device, row)


def checked(contents: Contents, sessions: Sequence[Session]) -> Plan:
    """The archive's whatsmeow rows checked on their own (ArchiveError, nothing read
    from or written to any database)."""
    owners = store_devices(sessions)
    plan = Plan()
    for line in _lines(contents):
        if line.device is None:
            plan.versions.append(line.row)
            continue
        if line.device not in owners:
            raise ArchiveError(
                f"whatsmeow rows of device {line.device} in the backup belong to no neonize "
                "session of it whose auth lives in the store: refused"
            )
        if line.table == DEVICE:
            if line.row.get("jid") != line.device or line.device in plan.devices:
                raise ArchiveError(f"the whatsmeow device {line.device} in the backup is not valid")
            plan.devices[line.device] = owners[line.device]
        elif line.device not in plan.devices:
            raise ArchiveError(
                f"whatsmeow rows of device {line.device} in the backup come before its device row"
            )
    return plan


def _version(versions: Sequence[dict[str, Any]]) -> str:
    return ", ".join(str(v.get("version")) for v in versions) or "unknown"


@dataclass
class Target:
    """The database the rows go into (the fleet's, ZAPVISOR_DATABASE_URL)."""

    plan: Plan
    dsn: str = field(repr=False)  # holds the password
    replace: bool
    """Devices already there are replaced (restore --force) rather than refused."""
    keys: dict[str, str] = field(default_factory=dict)
    """The target's tables holding a device's rows (Schema.keys)."""
    written: bool = False

    @classmethod
    def prepare(
        cls, plan: Plan, dsn: str | None, *, replace: bool, contents: Contents
    ) -> Target | None:
        """Everything checked against the database (the only change it may make:
        whatsmeow's own empty tables, created when missing); None when there is nothing
        to restore."""
        if not plan.devices:
            return None
        if not dsn or not dsn.startswith("postgres"):
            names = ", ".join(sorted(plan.devices.values()))
            raise ZapvisorError(
                f"sessions {names} keep their WhatsApp auth in whatsmeow's PostgreSQL tables, "
                "which this store cannot hold: restore onto a PostgreSQL store "
                "(ZAPVISOR_DATABASE_URL=postgresql://...); nothing restored"
            )
        target = cls(plan, dsn, replace)
        schema = target._schema()
        if not schema.present:
            create_tables(dsn)
            schema = target._schema()
            if not schema.present:
                raise StoreError("whatsmeow did not create its tables here: nothing restored")
        target._check(schema, contents)
        target.keys = schema.keys
        return target

    def _schema(self) -> Schema:
        with connect(self.dsn, "restore into it") as conn:
            try:
                return read_schema(conn)
            except psycopg.Error as exc:
                raise StoreError(f"cannot read whatsmeow's auth store: {exc}") from None

    def _check(self, schema: Schema, contents: Contents) -> None:
        order = {table: n for n, table in enumerate(schema.keys)}
        last: dict[str, int] = {}
        for line in _lines(contents):
            columns = schema.columns.get(line.table, {})
            missing = sorted(set(line.row) - set(columns))
            if missing or (line.table not in order and line.table not in SHARED):
                what = f"columns {', '.join(missing)} of" if columns else "the table"
                raise ZapvisorError(
                    f"whatsmeow's tables here lack {what} {line.table}, which the backup "
                    f"(whatsmeow schema {_version(self.plan.versions)}) carries: restore with "
                    "a zapvisor whose neonize is at least as new as the one that made it; "
                    "nothing restored"
                )
            if line.device is None or line.table == LID_MAP:
                continue
            if line.row.get(schema.keys[line.table]) != line.device:
                raise ArchiveError(
                    f"a {line.table} row in the backup is not device {line.device}'s"
                )
            if order[line.table] < last.get(line.device, 0):
                raise ArchiveError(
                    f"the whatsmeow rows of {line.device} in the backup are out of order"
                )
            last[line.device] = order[line.table]
        if self.replace:
            return
        with connect(self.dsn, "restore into it") as conn:
            found = conn.execute(
                "SELECT jid FROM whatsmeow_device WHERE jid = ANY(%s)", (list(self.plan.devices),)
            ).fetchall()
        if found:
            clash = ", ".join(f"{jid} ({self.plan.devices[jid]})" for (jid,) in found)
            raise ZapvisorError(
                f"whatsmeow devices already here: {clash}; nothing restored (--force replaces them)"
            )

    def write(self, contents: Contents) -> int:
        """Every row in, in one transaction (devices already there replaced whole when
        asked); how many rows."""
        count = 0
        try:
            with connect(self.dsn, "restore into it") as conn, conn.transaction():
                # replaced when asked; else the device is not there (checked), and what
                # is left of it (a table that does not cascade) is an orphan
                self._delete(conn)
                with conn.pipeline(), conn.cursor() as cur:  # one round trip, not one a row
                    for line in _lines(contents):
                        if line.table == VERSION:
                            continue  # the target's own, kept by whatsmeow
                        cur.execute(_insert(line), line.row)
                        count += 1
        except psycopg.Error as exc:
            why = exc.diag.message_primary or type(exc).__name__
            raise StoreError(f"cannot write whatsmeow's rows: {why}; nothing restored") from None
        self.written = True
        return count

    def forget(self) -> None:
        """Undo ``write`` (a later step of the restore failed)."""
        if not self.written:
            return  # its transaction left the database as it was
        with connect(self.dsn, "undo the restore") as conn, conn.transaction():
            self._delete(conn)

    def _delete(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        delete_devices(conn, Schema({}, self.keys), list(self.plan.devices))


def _insert(line: Line) -> sql.Composed:
    columns = list(line.row)
    query = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(line.table),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(map(sql.Placeholder, columns)),
    )
    if line.table == LID_MAP:  # shared by every device: a row already there stays
        return query + sql.SQL(" ON CONFLICT DO NOTHING")
    return query


def create_tables(dsn: str) -> None:
    """whatsmeow's schema at ``dsn``, made by whatsmeow itself (see _CREATE)."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CREATE],
            input=whatsmeow_dsn(dsn),
            capture_output=True,
            text=True,
            timeout=CREATE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise StoreError(
            f"whatsmeow did not create its tables here within {CREATE_TIMEOUT:.0f} s: "
            "nothing restored"
        ) from None
    if done.returncode != 0:
        lines = (done.stderr or "").strip().splitlines()
        # whatsmeow may quote the DSN it could not use (Go's URL errors keep the password)
        why = (
            redact(lines[-1], [urlsplit(dsn).password])
            if lines
            else f"exit status {done.returncode}"
        )
        raise StoreError(
            f"cannot create whatsmeow's tables here ({why}): start one neonize session with "
            "its auth in the store against this database once, then restore again; "
            "nothing restored"
        )
