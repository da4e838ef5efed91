"""The sqlite store's health tables (migration 0003): per-session health records and
alerts. Functions on an open connection; SQLiteStore wraps each in a transaction."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ecosystem.errors import SessionNotFound
from ecosystem.health.model import Alert, NewAlert, SessionHealth
from ecosystem.session import utcnow
from ecosystem.store.rowcache import RowCache
from ecosystem.store.sqlite_events import _ts

_HEALTH_TIMES = (
    "last_exit_at",
    "last_restart_at",
    "next_restart_at",
    "parked_at",
    "updated_at",
)


def _health_row(row: sqlite3.Row) -> SessionHealth:
    data = dict(row)
    data["name"] = data.pop("session_name")
    data["recent_exits"] = json.loads(data["recent_exits"])
    return SessionHealth.model_validate(data)


def _exists(db: sqlite3.Connection, name: str) -> bool:
    found = db.execute("SELECT 1 FROM whatsapp_sessions WHERE session_name = ?", (name,))
    return found.fetchone() is not None


def get_health(db: sqlite3.Connection, name: str) -> SessionHealth:
    row = db.execute("SELECT * FROM session_health WHERE session_name = ?", (name,)).fetchone()
    if row is not None:
        return _health_row(row)
    if not _exists(db, name):
        raise SessionNotFound(f"no session named {name!r} (see `zapvisor list`)")
    return SessionHealth(name=name)


def file_marker(db: sqlite3.Connection) -> tuple[int, int]:
    """Moves with every commit to the file: another connection's (``data_version``) or
    this one's (``total_changes``); a pragma, no rows read."""
    return (db.execute("PRAGMA data_version").fetchone()[0], db.total_changes)


def health_cache() -> RowCache[sqlite3.Row, SessionHealth]:
    """A record is made again only for a row that changed (store/rowcache.py)."""
    return RowCache(_health_row, tuple)


def list_health(
    db: sqlite3.Connection, host: str | None, made: RowCache[sqlite3.Row, SessionHealth]
) -> dict[str, SessionHealth]:
    marker = file_marker(db)
    kept = made.unchanged(host, marker)
    if kept is not None:  # nothing written to the file since that read
        return {h.name: h for h in kept}
    if host is None:
        rows = db.execute("SELECT * FROM session_health")
    else:
        rows = db.execute(
            "SELECT h.* FROM session_health h JOIN whatsapp_sessions s"
            " ON s.session_name = h.session_name WHERE s.host = ?",
            (host,),
        )
    return {h.name: h for h in made.records(host, rows.fetchall(), marker)}


def save_health(
    db: sqlite3.Connection, health: SessionHealth, updated_at: datetime | None = None
) -> None:
    if not _exists(db, health.name):
        raise SessionNotFound(f"no session named {health.name!r} (see `zapvisor list`)")
    data: dict[str, Any] = health.model_dump(exclude={"name"})
    data["updated_at"] = updated_at or utcnow()
    data["recent_exits"] = json.dumps([_ts(t) for t in health.recent_exits])
    for key in _HEALTH_TIMES:
        data[key] = _ts(data[key])
    cols = ["session_name", *data]
    updates = ", ".join(f"{c} = excluded.{c}" for c in data)
    db.execute(
        f"INSERT INTO session_health ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"  # noqa: S608 - columns come from the model
        f" ON CONFLICT (session_name) DO UPDATE SET {updates}",
        [health.name, *data.values()],
    )


def _alert_row(row: sqlite3.Row) -> Alert:
    return Alert.model_validate(dict(row))


def raise_alert(db: sqlite3.Connection, alert: NewAlert) -> Alert | None:
    now = _ts(utcnow())
    cur = db.execute(
        "INSERT INTO alerts (host, key, kind, severity, message, session_name, value,"
        " raised_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (host, key) WHERE cleared_at IS NULL DO NOTHING",
        (
            alert.host,
            alert.key,
            str(alert.kind),
            str(alert.severity),
            alert.message,
            alert.session_name,
            alert.value,
            now,
        ),
    )
    if cur.rowcount == 0:
        return None
    row = db.execute("SELECT * FROM alerts WHERE id = ?", (cur.lastrowid,)).fetchone()
    return _alert_row(row)


def clear_alert(db: sqlite3.Connection, host: str, key: str) -> Alert | None:
    row = db.execute(
        "SELECT id FROM alerts WHERE host = ? AND key = ? AND cleared_at IS NULL", (host, key)
    ).fetchone()
    if row is None:
        return None
    db.execute("UPDATE alerts SET cleared_at = ? WHERE id = ?", (_ts(utcnow()), row[0]))
    return _alert_row(db.execute("SELECT * FROM alerts WHERE id = ?", (row[0],)).fetchone())


def list_alerts(
    db: sqlite3.Connection, host: str | None, active: bool | None, limit: int
) -> list[Alert]:
    where, args = [], []
    if host is not None:
        where.append("host = ?")
        args.append(host)
    if active is not None:
        where.append("cleared_at IS NULL" if active else "cleared_at IS NOT NULL")
    sql = "SELECT * FROM alerts"
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = db.execute(sql + " ORDER BY id DESC LIMIT ?", [*args, limit])
    return [_alert_row(r) for r in rows.fetchall()]


def pending_alert_notices(db: sqlite3.Connection, host: str, since: datetime) -> list[Alert]:
    mark = _ts(since)
    rows = db.execute(
        "SELECT * FROM alerts WHERE host = ? AND ("
        " (raise_sent_at IS NULL AND raised_at >= ?)"
        " OR (cleared_at IS NOT NULL AND clear_sent_at IS NULL AND cleared_at >= ?))"
        " ORDER BY id",
        (host, mark, mark),
    )
    return [_alert_row(r) for r in rows.fetchall()]


def mark_alert_sent(db: sqlite3.Connection, alert_id: int, phase: str, at: datetime) -> None:
    column = {"raised": "raise_sent_at", "cleared": "clear_sent_at"}.get(phase)
    if column is None:
        raise ValueError(f"phase must be 'raised' or 'cleared', got {phase!r}")
    db.execute(f"UPDATE alerts SET {column} = ? WHERE id = ?", (_ts(at), alert_id))  # noqa: S608 - column from a fixed map


def import_rows(
    db: sqlite3.Connection, health: Sequence[SessionHealth], alerts: Sequence[Alert]
) -> None:
    """`zapvisor db copy`: records and alerts as they are (alerts oldest first, new ids;
    one already active here for its host and key is skipped), inside its transaction."""
    for record in health:
        save_health(db, record, record.updated_at)
    for alert in sorted(alerts, key=lambda a: a.id):
        db.execute(
            "INSERT INTO alerts (host, key, kind, severity, message, session_name, value,"
            " raised_at, cleared_at, raise_sent_at, clear_sent_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                alert.host,
                alert.key,
                str(alert.kind),
                str(alert.severity),
                alert.message,
                alert.session_name,
                alert.value,
                _ts(alert.raised_at),
                _ts(alert.cleared_at),
                _ts(alert.raise_sent_at),
                _ts(alert.clear_sent_at),
            ),
        )


class SQLiteHealth:
    """Mixed into SQLiteStore: the monitor's records and alerts, one transaction each."""

    if TYPE_CHECKING:

        def _cursor(self, write: bool = False) -> AbstractContextManager[sqlite3.Connection]: ...

        _health_made: RowCache[sqlite3.Row, SessionHealth]

    def get_health(self, name: str) -> SessionHealth:
        with self._cursor() as db:
            return get_health(db, name)

    def list_health(self, host: str | None = None) -> dict[str, SessionHealth]:
        with self._cursor() as db:
            return list_health(db, host, self._health_made)

    def save_health(self, health: SessionHealth) -> None:
        with self._cursor(write=True) as db:
            save_health(db, health)

    def raise_alert(self, alert: NewAlert) -> Alert | None:
        with self._cursor(write=True) as db:
            return raise_alert(db, alert)

    def refresh_alert(self, host: str, key: str, message: str, value: float | None) -> bool:
        with self._cursor(write=True) as db:
            cur = db.execute(
                "UPDATE alerts SET message = ?, value = ? WHERE host = ? AND key = ?"
                " AND cleared_at IS NULL AND (message IS NOT ? OR value IS NOT ?)",
                (message, value, host, key, message, value),
            )
            return cur.rowcount > 0

    def clear_alert(self, host: str, key: str) -> Alert | None:
        with self._cursor(write=True) as db:
            return clear_alert(db, host, key)

    def list_alerts(
        self, host: str | None = None, *, active: bool | None = None, limit: int = 100
    ) -> list[Alert]:
        with self._cursor() as db:
            return list_alerts(db, host, active, limit)

    def pending_alert_notices(self, host: str, since: datetime) -> list[Alert]:
        with self._cursor() as db:
            return pending_alert_notices(db, host, since)

    def mark_alert_sent(self, alert_id: int, phase: str, at: datetime) -> None:
        with self._cursor(write=True) as db:
            mark_alert_sent(db, alert_id, phase, at)
