"""The embedded store: one SQLite file in WAL mode, safe across processes.

Runners, the CLI and the TUI each open their own connection; writers serialise on
SQLite's lock (``BEGIN IMMEDIATE``) and wait up to ``BUSY_TIMEOUT_MS`` for it.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ecosystem.errors import SessionExists, SessionNotFound, StoreError
from ecosystem.health.model import Alert, SessionHealth
from ecosystem.lease import AuthKind
from ecosystem.session import Event, Session, utcnow
from ecosystem.store import sqlite_health as health_sql
from ecosystem.store.base import Store, audit_detail
from ecosystem.store.rowcache import RowCache
from ecosystem.store.sqlite_conversations import SQLiteConversations
from ecosystem.store.sqlite_events import _ts, kept_as
from ecosystem.store.sqlite_health import SQLiteHealth, file_marker, health_cache
from ecosystem.store.sqlite_hosts import SQLiteHosts
from ecosystem.store.sqlite_lease import SQLiteLease, fence_error
from ecosystem.store.sqlite_outbox import SQLiteOutbox, import_outbox
from ecosystem.webhook_events import WebhookEvent

if TYPE_CHECKING:
    from ecosystem.models import NewSession

BUSY_TIMEOUT_MS = 10_000
_SQLITE_READONLY = 8
"""SQLITE_READONLY, the primary result code of every "attempt to write a readonly
database" (the extended codes keep it in their low byte)."""
_JSON_FIELDS = ("ai_config", "timing_config", "webhook_events")
_TIME_FIELDS = ("qr_expires_at", "created_at", "updated_at", "connected_at", "last_activity_at")


def _to_db(field: str, value: Any) -> Any:
    if field in _JSON_FIELDS and value is not None:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, datetime):
        return _ts(value)
    if hasattr(value, "value"):  # StrEnum
        return str(value)
    return value


def _row_to_session(row: sqlite3.Row) -> Session:
    data = dict(row)
    data["name"] = data.pop("session_name")
    for field in _JSON_FIELDS:
        if data.get(field) is not None:
            data[field] = json.loads(data[field])
    return Session.model_validate(data)


def _merged(before: Session, changes: Mapping[str, Any]) -> Session:
    """The row with ``changes`` applied and checked, stamped now."""
    merged = before.model_copy(update=dict(changes))
    after = Session.model_validate(merged.model_dump() | {"updated_at": utcnow()})
    after.api_token_hash = changes.get("api_token_hash", before.api_token_hash)
    return after


def _assignments(fields: Sequence[str]) -> str:
    return ", ".join(f + " = ?" for f in fields)


class SQLiteStore(SQLiteOutbox, SQLiteHealth, SQLiteLease, SQLiteHosts, SQLiteConversations, Store):
    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._db = self._connect()
        self._sessions_made: RowCache[sqlite3.Row, Session] = RowCache(_row_to_session, tuple)
        self._health_made = health_cache()

    def _connect(self) -> sqlite3.Connection:
        path = self.path
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fresh = not path.exists()
            db = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            if fresh:
                path.chmod(0o600)
            db.row_factory = sqlite3.Row
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute("PRAGMA foreign_keys = ON")
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open the sqlite store at {path}: {exc}") from None
        return db

    def _reopen(self) -> None:
        """SQLite opens a file it cannot write read-only, silently, and the connection
        stays so after the file is writable again: a runner started during a read-only
        or full-disk spell would fail every write for ever. A new connection is made
        after each such failure (the caller retries), so writes resume with the disk."""
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        self._db = self._connect()
        # a new connection counts its markers from scratch: an old one could come back
        self._sessions_made.clear()
        self._health_made.clear()

    def describe(self) -> str:
        return f"sqlite {self.path}"

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- plumbing ------------------------------------------------------------------

    @contextmanager
    def _cursor(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction; every sqlite error becomes a StoreError naming the file."""
        with self._lock:
            try:
                if write:
                    self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    if write and self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
                if write:
                    self._db.execute("COMMIT")
            except sqlite3.IntegrityError as exc:
                lost = fence_error(exc, self.fence.session if self.fence else "")
                if lost is not None:
                    raise lost from None
                raise
            except sqlite3.Error as exc:
                if getattr(exc, "sqlite_errorcode", 0) & 0xFF == _SQLITE_READONLY:
                    with contextlib.suppress(StoreError):  # still unwritable: next time
                        self._reopen()
                raise StoreError(f"the sqlite store at {self.path} failed: {exc}") from None

    def _fetch(self, db: sqlite3.Connection, name: str) -> Session:
        row = db.execute(
            "SELECT * FROM whatsapp_sessions WHERE session_name = ?", (name,)
        ).fetchone()
        if row is None:
            raise SessionNotFound(f"no session named {name!r} (see `zapvisor list`)")
        return _row_to_session(row)

    # -- schema --------------------------------------------------------------------

    def migrate(self) -> list[str]:
        from ecosystem.store import migrations  # a store already migrated never reads them

        # Every command that opens the embedded store migrates it first: when nothing is
        # pending, as almost always, that is two reads, without the write lock (which a
        # busy runner may hold).
        if not migrations.pending("sqlite", self.applied_versions()):
            return []
        applied: list[str] = []
        with self._cursor(write=True) as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            done = {r[0] for r in db.execute("SELECT version FROM schema_migrations")}
            for mig in migrations.load("sqlite"):
                if mig.version in done:
                    continue
                for statement in migrations.sqlite_statements(mig.sql):
                    db.execute(statement)
                db.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    (mig.version, mig.name, _ts(utcnow())),
                )
                applied.append(f"{mig.version:04d}_{mig.name}")
        return applied

    def check_writable(self) -> None:
        # Setting user_version to itself is a real write (a read-only file, a full
        # disk or a lock held for ever fail it) that changes nothing zapvisor reads.
        with self._cursor(write=True) as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            db.execute(f"PRAGMA user_version = {version}")

    def applied_versions(self) -> set[int]:
        if not self.schema_version():
            return set()
        with self._cursor() as db:
            return {int(r[0]) for r in db.execute("SELECT version FROM schema_migrations")}

    def schema_version(self) -> int:
        with self._cursor() as db:
            exists = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_migrations'"
            ).fetchone()
            if not exists:
                return 0
            row = db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
            return int(row[0] or 0)

    # -- sessions ------------------------------------------------------------------

    def create_session(
        self,
        new: NewSession,
        *,
        host: str,
        ports: range,
        exclude_ports: Iterable[int],
        max_sessions: int,
        actor: str,
        api_token_hash: str | None = None,
    ) -> Session:
        from ecosystem.ports import pick_port  # a runner never creates a session

        excluded = set(exclude_ports)
        with self._cursor(write=True) as db:
            if db.execute(
                "SELECT 1 FROM whatsapp_sessions WHERE session_name = ?", (new.name,)
            ).fetchone():
                raise SessionExists(f"a session named {new.name!r} already exists")
            held = {
                r[0]
                for r in db.execute("SELECT port FROM whatsapp_sessions WHERE host = ?", (host,))
            }
            port = pick_port(ports, held, excluded, max_sessions, host)
            now = utcnow()
            fields = new.model_dump()
            fields["auth"] = fields["auth"] or AuthKind.LOCAL
            session = Session(
                **fields,
                host=host,
                port=port,
                created_at=now,
                updated_at=now,
                api_token_hash=api_token_hash,
            )
            data = session.model_dump()
            data["api_token_hash"] = api_token_hash
            data["session_name"] = data.pop("name")
            cols = ", ".join(data)
            try:
                db.execute(
                    f"INSERT INTO whatsapp_sessions ({cols}) VALUES ({', '.join('?' * len(data))})",  # noqa: S608 - column names come from the model
                    [_to_db(k, v) for k, v in data.items()],
                )
            except sqlite3.IntegrityError as exc:
                raise StoreError(f"the sqlite store refused {new.name!r}: {exc}") from None
            self._insert_event(
                db, new.name, "create", actor, {"port": port, "connector": new.connector}
            )
            return session

    def get_session(self, name: str) -> Session:
        with self._cursor() as db:
            return self._fetch(db, name)

    def list_sessions(self, host: str | None = None) -> list[Session]:
        with self._cursor() as db:
            marker = file_marker(db)
            kept = self._sessions_made.unchanged(host, marker)
            if kept is not None:
                return kept  # nothing written to the file since that read
            if host is None:
                rows = db.execute("SELECT * FROM whatsapp_sessions ORDER BY session_name")
            else:
                rows = db.execute(
                    "SELECT * FROM whatsapp_sessions WHERE host = ? ORDER BY session_name", (host,)
                )
            return self._sessions_made.records(host, rows.fetchall(), marker)

    def _update(
        self, name: str, changes: Mapping[str, Any], actor: str, action: str | None
    ) -> Session:
        if action is None:
            # A runner's report that changes nothing is not written: writers here queue
            # for one lock, and when every runner stops at once (a shutdown) each one's
            # last report is already in the row (Reads.shutdown). A read never waits.
            with self._cursor() as db:
                current = self._fetch(db, name)
            if all(kept_as(getattr(current, f), value) for f, value in changes.items()):
                return current
            written = self._report(name, current, changes, actor)
            if written is not None:
                return written
        with self._cursor(write=True) as db:
            before = self._fetch(db, name)
            after = _merged(before, changes)
            fields = [*changes, "updated_at"]
            db.execute(
                f"UPDATE whatsapp_sessions SET {_assignments(fields)}"  # noqa: S608 - fields checked against the model
                " WHERE session_name = ?",
                [_to_db(f, getattr(after, f)) for f in fields] + [name],
            )
            if action is not None:
                self._insert_event(db, name, action, actor, audit_detail(changes))
            if before.status != after.status:
                self._status_event(db, name, actor, before, after)
            return after

    def _report(
        self, name: str, current: Session, changes: Mapping[str, Any], actor: str
    ) -> Session | None:
        """A runner's report as one UPDATE of the row read just before (outside the write
        lock), on condition that its status is still the one read: the status event
        needs the status it replaces, which the condition vouches for without a second
        read under the lock. A report that keeps the status is that statement alone
        (atomic by itself); one that changes it adds the event in one transaction.
        None when the row moved on meanwhile (or went): the caller reads it again."""
        after = _merged(current, changes)
        fields = [*changes, "updated_at"]
        statement = (
            f"UPDATE whatsapp_sessions SET {_assignments(fields)}"  # noqa: S608 - fields checked against the model
            " WHERE session_name = ? AND status = ? RETURNING *"
        )
        values = [_to_db(f, getattr(after, f)) for f in fields] + [name, str(current.status)]
        changed = current.status != after.status
        with self._cursor(write=changed) as db:
            rows = db.execute(statement, values).fetchall()  # to its end: the lock goes
            if not rows:
                return None
            if changed:
                self._status_event(db, name, actor, current, after)
        return _row_to_session(rows[0])

    cheap_change_marker = True

    def change_marker(self) -> Hashable:
        """Moves with every commit to the file: another connection's (SQLite's
        ``data_version``) or this one's (``total_changes``); a pragma, no rows read."""
        with self._cursor() as db:
            return file_marker(db)

    def delete_session(self, name: str, *, actor: str) -> None:
        with self._cursor(write=True) as db:
            session = self._fetch(db, name)
            db.execute("DELETE FROM whatsapp_sessions WHERE session_name = ?", (name,))
            self._insert_event(db, name, "delete", actor, {"port": session.port})

    def import_rows(
        self,
        sessions: Sequence[Session],
        events: Sequence[Event],
        *,
        actor: str,
        outbox: Sequence[WebhookEvent] = (),
        health: Sequence[SessionHealth] = (),
        alerts: Sequence[Alert] = (),
    ) -> int:
        with self._cursor(write=True) as db:
            names = [s.name for s in sessions]
            taken = sorted(
                r[0]
                for r in db.execute(
                    "SELECT session_name FROM whatsapp_sessions"  # noqa: S608 - placeholders
                    f" WHERE session_name IN ({', '.join('?' * len(names))})",
                    names,
                )
            )
            if taken:
                raise SessionExists(f"sessions already in the target store: {', '.join(taken)}")
            for session in sessions:
                data = session.model_dump()
                data["api_token_hash"] = session.api_token_hash
                data["session_name"] = data.pop("name")
                db.execute(
                    f"INSERT INTO whatsapp_sessions ({', '.join(data)})"  # noqa: S608 - model columns
                    f" VALUES ({', '.join('?' * len(data))})",
                    [_to_db(k, v) for k, v in data.items()],
                )
            for event in sorted(events, key=lambda e: (e.ts, e.id)):
                db.execute(
                    "INSERT INTO session_events (ts, session_name, actor, action, from_status,"
                    " to_status, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        _ts(event.ts),
                        event.session_name,
                        event.actor,
                        event.action,
                        event.from_status,
                        event.to_status,
                        json.dumps(event.detail, ensure_ascii=False, default=str),
                    ),
                )
            import_outbox(db, outbox)
            health_sql.import_rows(db, health, alerts)
            return len(sessions)
