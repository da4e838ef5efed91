"""The audit log of the embedded SQLite store: every change a row of session_events."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ecosystem.session import Event, Session, utcnow


def _ts(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="milliseconds")


def kept_as(stored: Any, reported: Any) -> bool:
    """Whether writing ``reported`` over ``stored`` leaves the row as it is. Times are
    kept to the millisecond (``_ts``) and a runner's carry microseconds: compared as
    stored, or the same report again would never be a no-op and would take the write
    lock (and move the file's change marker, which every live view re-reads on)."""
    if isinstance(stored, datetime) and isinstance(reported, datetime):
        return _to_ms(stored) == _to_ms(reported)
    return bool(stored == reported)


def _to_ms(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


class SQLiteEvents:
    """Mixed into SQLiteStore."""

    if TYPE_CHECKING:

        def _cursor(self, write: bool = False) -> AbstractContextManager[sqlite3.Connection]: ...

    def _insert_event(
        self,
        db: sqlite3.Connection,
        session_name: str | None,
        action: str,
        actor: str,
        detail: Mapping[str, Any] | None = None,
        from_status: str | None = None,
        to_status: str | None = None,
        ts: datetime | None = None,
    ) -> None:
        db.execute(
            "INSERT INTO session_events (ts, session_name, actor, action, from_status,"
            " to_status, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                _ts(ts or utcnow()),
                session_name,
                actor,
                action,
                from_status,
                to_status,
                json.dumps(dict(detail or {}), ensure_ascii=False, default=str),
            ),
        )

    def _status_event(
        self, db: sqlite3.Connection, name: str, actor: str, before: Session, after: Session
    ) -> None:
        """The ``status`` event of a write that moved the row from ``before`` to ``after``."""
        self._insert_event(
            db,
            name,
            "status",
            actor,
            {"last_error": after.last_error} if after.last_error else None,
            from_status=before.status,
            to_status=after.status,
        )

    def add_event(
        self,
        session_name: str | None,
        action: str,
        *,
        actor: str,
        detail: Mapping[str, Any] | None = None,
        ts: datetime | None = None,
    ) -> None:
        with self._cursor(write=True) as db:
            self._insert_event(db, session_name, action, actor, detail, ts=ts)

    def list_events(self, session_name: str | None = None, limit: int = 100) -> list[Event]:
        with self._cursor() as db:
            if session_name is None:
                rows = db.execute("SELECT * FROM session_events ORDER BY id DESC LIMIT ?", (limit,))
            else:
                rows = db.execute(
                    "SELECT * FROM session_events WHERE session_name = ? ORDER BY id DESC LIMIT ?",
                    (session_name, limit),
                )
            out = []
            for row in rows.fetchall():
                data = dict(row)
                data["detail"] = json.loads(data["detail"])
                out.append(Event.model_validate(data))
            return out
