"""The sqlite store's fleet hosts (migration 0005), one transaction per call.

`zapvisor hosts add` refuses on SQLite (one machine alone reads the file), but the store
keeps the same rows and rules as the others, so the contract suite holds for all three.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ecosystem.fleet.records import (
    HOST_CHANGES,
    HostRecord,
    NewHost,
    host_busy,
    host_exists,
    host_not_found,
)
from ecosystem.session import utcnow
from ecosystem.store.sqlite_events import SQLiteEvents

_COLUMNS = tuple(f for f in NewHost.model_fields if f not in ("name", "address"))
"""What `hosts add` records besides the name and address (the row's own columns)."""


def _ts(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="milliseconds")


def host_from_row(row: Mapping[str, Any]) -> HostRecord:
    """A hosts row (either dialect) as the model: `host_id` is the name, `created_at`
    when it was added."""
    data = dict(row)
    data["name"] = data.pop("host_id")
    data["added_at"] = data.pop("created_at")
    return HostRecord.model_validate(data)


def _fetch(db: sqlite3.Connection, name: str) -> HostRecord:
    row = db.execute(
        "SELECT * FROM hosts WHERE host_id = ? AND ssh_user IS NOT NULL", (name,)
    ).fetchone()
    if row is None:
        raise host_not_found(name)
    return host_from_row(row)


class SQLiteHosts(SQLiteEvents):
    """Mixed into SQLiteStore."""

    if TYPE_CHECKING:

        def _cursor(self, write: bool = False) -> AbstractContextManager[sqlite3.Connection]: ...

    def list_hosts(self) -> list[HostRecord]:
        with self._cursor() as db:
            rows = db.execute(
                "SELECT * FROM hosts WHERE ssh_user IS NOT NULL ORDER BY host_id"
            ).fetchall()
            return [host_from_row(r) for r in rows]

    def get_host(self, name: str) -> HostRecord:
        with self._cursor() as db:
            return _fetch(db, name)

    def add_host(
        self, new: NewHost, *, actor: str, detail: Mapping[str, Any] | None = None
    ) -> HostRecord:
        now = utcnow()
        with self._cursor(write=True) as db:
            if db.execute("SELECT 1 FROM hosts WHERE host_id = ?", (new.name,)).fetchone():
                raise host_exists(new.name)
            values = new.model_dump()
            db.execute(
                "INSERT INTO hosts (host_id, address, created_at, added_by, "  # noqa: S608 - constant columns
                + ", ".join(_COLUMNS)
                + f") VALUES (?, ?, ?, ?, {', '.join('?' * len(_COLUMNS))})",
                [new.name, new.address, _ts(now), actor] + [values[c] for c in _COLUMNS],
            )
            self._insert_event(db, None, "host_add", actor, detail, ts=now)
            return _fetch(db, new.name)

    def update_host(
        self,
        name: str,
        changes: Mapping[str, Any],
        *,
        actor: str = "",
        action: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> HostRecord:
        unknown = set(changes) - HOST_CHANGES
        if unknown:
            raise ValueError(f"cannot change {', '.join(sorted(unknown))} of a host")
        with self._cursor(write=True) as db:
            before = _fetch(db, name)
            after = HostRecord.model_validate(before.model_dump() | dict(changes))
            if changes:
                fields = sorted(changes)
                db.execute(
                    f"UPDATE hosts SET {', '.join(f + ' = ?' for f in fields)}"  # noqa: S608 - checked against HOST_CHANGES
                    " WHERE host_id = ?",
                    [_value(getattr(after, f)) for f in fields] + [name],
                )
            if action is not None:
                self._insert_event(db, None, action, actor, detail)
            return _fetch(db, name)

    def remove_host(
        self, name: str, *, actor: str, detail: Mapping[str, Any] | None = None
    ) -> None:
        with self._cursor(write=True) as db:
            _fetch(db, name)
            held = [
                r[0]
                for r in db.execute(
                    "SELECT session_name FROM whatsapp_sessions WHERE host = ?"
                    " ORDER BY session_name",
                    (name,),
                )
            ]
            if held:
                raise host_busy(name, held)
            db.execute("DELETE FROM hosts WHERE host_id = ?", (name,))
            self._insert_event(db, None, "host_remove", actor, detail)


def _value(value: Any) -> Any:
    return _ts(value) if isinstance(value, datetime) else value
