"""The webhook outbox of the embedded SQLite store (migration 0002)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ecosystem.errors import SessionNotFound, StoreError
from ecosystem.store.base import DEFAULT_WEBHOOK_LEASE
from ecosystem.store.sqlite_lease import fence_error
from ecosystem.webhook_events import DeliveryState, WebhookEvent

_COLUMNS = (
    "event_id, session_name, event, payload, created_at, state, attempts, next_attempt_at,"
    " last_attempt_at, last_status, last_error, delivered_at"
)


def _ts(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="milliseconds")


def _row(row: sqlite3.Row) -> WebhookEvent:
    data = dict(row)
    data["payload"] = json.loads(data["payload"])
    return WebhookEvent.model_validate(data)


def _values(event: WebhookEvent) -> tuple[object, ...]:
    return (
        event.event_id,
        event.session_name,
        event.event,
        json.dumps(event.payload, ensure_ascii=False, separators=(",", ":")),
        _ts(event.created_at),
        str(event.state),
        event.attempts,
        _ts(event.next_attempt_at),
        _ts(event.last_attempt_at),
        event.last_status,
        event.last_error,
        _ts(event.delivered_at),
    )


_INSERT = f"INSERT INTO webhook_outbox ({_COLUMNS}) VALUES ({', '.join('?' * 12)})"  # noqa: S608


def import_outbox(db: sqlite3.Connection, rows: Sequence[WebhookEvent]) -> None:
    """`zapvisor db copy`: rows as they are, in the order given (inside its transaction)."""
    db.executemany(_INSERT, [_values(r) for r in rows])


class SQLiteOutbox:
    """Mixed into SQLiteStore; every method is one short transaction."""

    if TYPE_CHECKING:

        def _cursor(self, write: bool = False) -> AbstractContextManager[sqlite3.Connection]: ...

    def enqueue_webhook(self, event: WebhookEvent) -> None:
        with self._cursor(write=True) as db:
            try:
                db.execute(_INSERT + " ON CONFLICT (event_id) DO NOTHING", _values(event))
            except sqlite3.IntegrityError as exc:
                raise fence_error(exc, event.session_name) or SessionNotFound(
                    f"no session named {event.session_name!r} for webhook event {event.event}"
                ) from None

    def due_webhooks(
        self,
        session_name: str,
        now: datetime,
        limit: int = 50,
        *,
        lease: timedelta = DEFAULT_WEBHOOK_LEASE,
    ) -> list[WebhookEvent]:
        # BEGIN IMMEDIATE: one claimer at a time, so no two get the same row
        until = _ts(now + lease)
        with self._cursor(write=True) as db:
            rows = db.execute(
                f"SELECT id, {_COLUMNS} FROM webhook_outbox"  # noqa: S608 - constant
                " WHERE session_name = ? AND state = 'pending' AND next_attempt_at <= ?"
                " ORDER BY next_attempt_at, id LIMIT ?",
                (session_name, _ts(now), limit),
            ).fetchall()
            db.executemany(
                "UPDATE webhook_outbox SET next_attempt_at = ? WHERE id = ?",
                [(until, r["id"]) for r in rows],
            )
        claimed = [_row(r) for r in rows]
        for row in claimed:
            row.next_attempt_at = datetime.fromisoformat(str(until))
        return claimed

    def next_webhook_due(self, session_name: str) -> datetime | None:
        with self._cursor() as db:
            row = db.execute(
                "SELECT MIN(next_attempt_at) FROM webhook_outbox"
                " WHERE session_name = ? AND state = 'pending'",
                (session_name,),
            ).fetchone()
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    def record_webhook_attempt(
        self,
        event_id: str,
        *,
        state: DeliveryState,
        attempts: int,
        at: datetime,
        next_attempt_at: datetime | None = None,
        status: int | None = None,
        error: str | None = None,
    ) -> None:
        with self._cursor(write=True) as db:
            cur = db.execute(
                "UPDATE webhook_outbox SET state = ?, attempts = ?, last_attempt_at = ?,"
                " next_attempt_at = COALESCE(?, next_attempt_at), last_status = ?,"
                " last_error = ?, delivered_at = ? WHERE event_id = ?",
                (
                    str(state),
                    attempts,
                    _ts(at),
                    _ts(next_attempt_at),
                    status,
                    error,
                    _ts(at) if state == DeliveryState.DELIVERED else None,
                    event_id,
                ),
            )
            if cur.rowcount == 0:
                raise StoreError(f"webhook event {event_id} is not in the outbox")

    def list_webhooks(
        self, session_name: str, state: DeliveryState | None = None, limit: int = 100
    ) -> list[WebhookEvent]:
        query = f"SELECT {_COLUMNS} FROM webhook_outbox WHERE session_name = ?"  # noqa: S608
        args: list[object] = [session_name]
        if state is not None:
            query += " AND state = ?"
            args.append(str(state))
        query += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        with self._cursor() as db:
            rows = db.execute(query, args).fetchall()
        return [_row(r) for r in rows]

    def webhook_counts(self, session_name: str) -> dict[str, int]:
        counts = {str(s): 0 for s in DeliveryState}
        with self._cursor() as db:
            for state, count in db.execute(
                "SELECT state, COUNT(*) FROM webhook_outbox WHERE session_name = ? GROUP BY state",
                (session_name,),
            ):
                counts[state] = count
        return counts

    def replay_webhooks(self, session_name: str, now: datetime) -> int:
        with self._cursor(write=True) as db:
            cur = db.execute(
                "UPDATE webhook_outbox SET state = 'pending', attempts = 0, next_attempt_at = ?"
                " WHERE session_name = ? AND state = 'dead'",
                (_ts(now), session_name),
            )
            return cur.rowcount

    def count_dead_letters(self, host: str) -> int:
        with self._cursor() as db:
            row = db.execute(
                "SELECT COUNT(*) FROM webhook_outbox o JOIN whatsapp_sessions s"
                " ON s.session_name = o.session_name WHERE s.host = ? AND o.state = 'dead'",
                (host,),
            ).fetchone()
        return int(row[0]) if row else 0

    def prune_webhooks(self, session_name: str, delivered_before: datetime) -> int:
        with self._cursor(write=True) as db:
            cur = db.execute(
                "DELETE FROM webhook_outbox WHERE session_name = ? AND state = 'delivered'"
                " AND delivered_at < ?",
                (session_name, _ts(delivered_before)),
            )
            return cur.rowcount
