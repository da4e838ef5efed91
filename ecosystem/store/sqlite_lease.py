"""Leases, the fence and the sim connector's tables on the embedded SQLite store
(migration 0009). One host, one clock: the lease is there so the runner's code is the
same on every store, and its fence still stops a stray runner of an older epoch (one a
killed supervisord left behind) from writing over the current one.

The fence is per connection, as on PostgreSQL: a runner's connection gets a TEMP table
holding its holder and epoch and TEMP triggers that refuse its writes to the session
row, the outbox, the sim auth and the bot's conversations once the lease moved on.
Other connections (the CLI, the monitor) have neither, so they write freely."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ecosystem.errors import CannotMove, LeaseHeld, LeaseLost, NotThisHost, SessionNotFound
from ecosystem.lease import AuthKind, Fence, Lease, LeaseInfo, SimDevice, SimLink
from ecosystem.session import Session, utcnow
from ecosystem.store.sqlite_events import SQLiteEvents

LOST_MARK = "zapvisor: lease lost"

_MESSAGE_SESSION = (
    "(SELECT c.session_name FROM main.conversations c WHERE c.id = NEW.conversation_id)"
)

# (table, operation, the session the written row belongs to)
_GUARDED = (
    ("whatsapp_sessions", "UPDATE", "NEW.session_name"),
    ("webhook_outbox", "INSERT", "NEW.session_name"),
    ("webhook_outbox", "UPDATE", "NEW.session_name"),
    ("sim_devices", "INSERT", "NEW.session_name"),
    ("sim_devices", "UPDATE", "NEW.session_name"),
    ("sim_devices", "DELETE", "OLD.session_name"),
    ("session_secrets", "INSERT", "NEW.session_name"),
    ("session_secrets", "UPDATE", "NEW.session_name"),
    # the bot's conversations (0010, fenced since 0012): a message names its conversation
    ("conversations", "INSERT", "NEW.session_name"),
    ("conversations", "UPDATE", "NEW.session_name"),
    ("messages", "INSERT", _MESSAGE_SESSION),
    ("messages", "UPDATE", _MESSAGE_SESSION),
)


def _ts(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="milliseconds")


def _trigger(table: str, op: str, session: str) -> str:
    return (
        f"CREATE TEMP TRIGGER IF NOT EXISTS zv_fence_{table}_{op.lower()}"  # noqa: S608 - constants
        f" BEFORE {op} ON main.{table}"
        " WHEN EXISTS (SELECT 1 FROM temp.zv_fence) AND NOT EXISTS ("
        " SELECT 1 FROM main.session_leases l JOIN temp.zv_fence f"
        " ON l.holder = f.holder AND l.epoch = f.epoch"
        f" WHERE l.session_name = {session})"
        f" BEGIN SELECT RAISE(ABORT, '{LOST_MARK}'); END"
    )


def fence_error(exc: sqlite3.IntegrityError, name: str = "") -> LeaseLost | None:
    """The LeaseLost a fence trigger's refusal stands for, or None for another error."""
    if LOST_MARK not in str(exc):
        return None
    what = f"session {name}'s" if name else "the session's"
    return LeaseLost(f"{what} lease is no longer this runner's: it was taken over")


def _lease(row: sqlite3.Row | None, now: datetime) -> Lease | None:
    return None if row is None else Lease.model_validate({**dict(row), "now": now})


class SQLiteLease(SQLiteEvents):
    """Mixed into SQLiteStore."""

    fence: Fence | None = None

    if TYPE_CHECKING:
        _db: sqlite3.Connection
        _lock: threading.RLock

        def _cursor(self, write: bool = False) -> AbstractContextManager[sqlite3.Connection]: ...

        def _fetch(self, db: sqlite3.Connection, name: str) -> Session: ...

    def set_fence(self, fence: Fence | None) -> None:
        with self._cursor(write=True) as db:
            db.execute(
                "CREATE TEMP TABLE IF NOT EXISTS zv_fence"
                " (holder TEXT NOT NULL, epoch INTEGER NOT NULL)"
            )
            db.execute("DELETE FROM temp.zv_fence")
            if fence is not None:
                for table, op, session in _GUARDED:
                    db.execute(_trigger(table, op, session))
                db.execute("INSERT INTO temp.zv_fence VALUES (?, ?)", (fence.holder, fence.epoch))
        self.fence = fence

    def set_failover(
        self, name: str, *, auth: AuthKind | None, failover: bool | None, actor: str
    ) -> Session:
        with self._cursor(write=True) as db:
            before = self._fetch(db, name)
            if auth is not None and auth != before.auth and before.phone:
                raise CannotMove(
                    f"session {name} is linked to a phone: its auth cannot change place; "
                    f"`zapvisor logout {name}` first, then pair it again"
                )
            changes: dict[str, Any] = {}
            if auth is not None:
                changes["auth"] = str(auth)
            if failover is not None:
                changes["failover"] = int(failover)
            db.execute(
                "UPDATE whatsapp_sessions SET auth = coalesce(?, auth),"
                " failover = coalesce(?, failover), updated_at = ? WHERE session_name = ?",
                (changes.get("auth"), changes.get("failover"), _ts(utcnow()), name),
            )
            self._insert_event(db, name, "configure", actor, changes)
            return self._fetch(db, name)

    # -- leases --------------------------------------------------------------------

    def acquire_lease(self, name: str, host: str, ttl: float) -> Lease:
        now = utcnow()
        with self._cursor(write=True) as db:
            session = db.execute(
                "SELECT host FROM whatsapp_sessions WHERE session_name = ?", (name,)
            ).fetchone()
            if session is None:
                raise SessionNotFound(f"no session named {name!r} (see `zapvisor list`)")
            if session["host"] != host:
                raise NotThisHost(
                    f"session {name} runs on host {session['host']} now", host=session["host"]
                )
            current = _lease(
                db.execute(
                    "SELECT * FROM session_leases WHERE session_name = ?", (name,)
                ).fetchone(),
                now,
            )
            if current is not None and (
                current.move_to
                or current.offered_to
                or (current.holder != host and current.expires_at > now)
            ):
                raise LeaseHeld(f"session {name}'s lease is held by {current.holder}")
            epoch = (current.epoch if current else 0) + 1
            db.execute(
                "INSERT INTO session_leases (session_name, holder, epoch, expires_at, acquired_at,"
                " renewed_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (session_name) DO UPDATE SET"
                " holder = excluded.holder, epoch = excluded.epoch,"
                " expires_at = excluded.expires_at, acquired_at = excluded.acquired_at,"
                " renewed_at = excluded.renewed_at, offered_to = NULL",
                (name, host, epoch, _ts(now + timedelta(seconds=ttl)), _ts(now), _ts(now)),
            )
            row = db.execute("SELECT * FROM session_leases WHERE session_name = ?", (name,))
            found = _lease(row.fetchone(), now)
            assert found is not None
            return found

    def renew_lease(self, name: str, fence: Fence, ttl: float) -> Lease:
        now = utcnow()
        with self._cursor(write=True) as db:
            db.execute(
                "UPDATE session_leases SET expires_at = ?, renewed_at = ?"
                " WHERE session_name = ? AND holder = ? AND epoch = ?",
                (_ts(now + timedelta(seconds=ttl)), _ts(now), name, fence.holder, fence.epoch),
            )
            row = db.execute("SELECT * FROM session_leases WHERE session_name = ?", (name,))
            found = _lease(row.fetchone(), now)
        if found is None or found.holder != fence.holder or found.epoch != fence.epoch:
            holder = found.holder if found else None
            epoch = found.epoch if found else None
            raise LeaseLost(
                f"session {name}'s lease is no longer this runner's: {holder} holds it "
                f"(epoch {epoch})",
                holder=holder,
                epoch=epoch,
            )
        return found

    def release_lease(self, name: str, fence: Fence) -> bool:
        now = _ts(utcnow())
        with self._cursor(write=True) as db:
            cur = db.execute(
                "UPDATE session_leases SET expires_at = min(expires_at, ?)"
                " WHERE session_name = ? AND holder = ? AND epoch = ?",
                (now, name, fence.holder, fence.epoch),
            )
            return cur.rowcount > 0

    def lease_info(self, name: str) -> LeaseInfo:
        now = utcnow()
        with self._cursor() as db:
            if (
                db.execute(
                    "SELECT 1 FROM whatsapp_sessions WHERE session_name = ?", (name,)
                ).fetchone()
                is None
            ):
                raise SessionNotFound(f"no session named {name!r} (see `zapvisor list`)")
            row = db.execute("SELECT * FROM session_leases WHERE session_name = ?", (name,))
            return LeaseInfo(now=now, lease=_lease(row.fetchone(), now))

    # -- the webhook secret of a session whose auth lives in the store ----------------

    def webhook_secret(self, name: str) -> str | None:
        with self._cursor() as db:
            row = db.execute(
                "SELECT webhook_secret FROM session_secrets WHERE session_name = ?", (name,)
            ).fetchone()
            return None if row is None else str(row[0])

    def save_webhook_secret(self, name: str, secret: str) -> None:
        with self._cursor(write=True) as db:
            try:
                db.execute(
                    "INSERT INTO session_secrets (session_name, webhook_secret, updated_at)"
                    " VALUES (?, ?, ?) ON CONFLICT (session_name) DO UPDATE SET"
                    " webhook_secret = excluded.webhook_secret, updated_at = excluded.updated_at",
                    (name, secret, _ts(utcnow())),
                )
            except sqlite3.IntegrityError as exc:
                raise fence_error(exc, name) or SessionNotFound(
                    f"no session named {name!r} (see `zapvisor list`)"
                ) from None

    # -- the sim connector ---------------------------------------------------------

    def sim_auth(self, name: str) -> SimDevice | None:
        with self._cursor() as db:
            row = db.execute("SELECT * FROM sim_devices WHERE session_name = ?", (name,))
            found = row.fetchone()
            return None if found is None else SimDevice.model_validate(dict(found))

    def save_sim_auth(self, name: str, device: str, phone: str) -> None:
        with self._cursor(write=True) as db:
            try:
                db.execute(
                    "INSERT INTO sim_devices (session_name, device, phone, paired_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (session_name) DO UPDATE SET"
                    " device = excluded.device, phone = excluded.phone,"
                    " paired_at = excluded.paired_at",
                    (name, device, phone, _ts(utcnow())),
                )
            except sqlite3.IntegrityError as exc:
                raise fence_error(exc, name) or SessionNotFound(
                    f"no session named {name!r} (see `zapvisor list`)"
                ) from None

    def delete_sim_auth(self, name: str) -> bool:
        with self._cursor(write=True) as db:
            return (
                db.execute("DELETE FROM sim_devices WHERE session_name = ?", (name,)).rowcount > 0
            )

    def sim_open(
        self, device: str, session: str, host: str, pid: int, epoch: int | None, live: float
    ) -> tuple[int, list[dict[str, Any]]]:
        now = utcnow()
        replaced: list[dict[str, Any]] = []
        with self._cursor(write=True) as db:
            cur = db.execute(
                "INSERT INTO sim_links (device, session_name, host, pid, epoch, opened_at,"
                " seen_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (device, session, host, pid, epoch, _ts(now), _ts(now)),
            )
            link = int(cur.lastrowid or 0)
            old_links = db.execute(
                "SELECT * FROM sim_links WHERE device = ? AND closed_at IS NULL AND id <> ?",
                (device, link),
            ).fetchall()
            for old in old_links:
                seen = datetime.fromisoformat(old["seen_at"])
                in_use = (now - seen).total_seconds() < live
                db.execute(
                    "UPDATE sim_links SET closed_at = ?, close_reason = ?, replaced_by = ?,"
                    " overlap = ? WHERE id = ?",
                    (_ts(now), "replaced" if in_use else "expired", link, int(in_use), old["id"]),
                )
                replaced.append(
                    {"id": old["id"], "host": old["host"], "pid": old["pid"], "live": in_use}
                )
                self._insert_event(
                    db,
                    session,
                    "sim_replaced" if in_use else "sim_expired",
                    "sim",
                    {
                        "device": device,
                        "old_host": old["host"],
                        "old_pid": old["pid"],
                        "new_host": host,
                        "new_pid": pid,
                        "old_seen_at": old["seen_at"],
                    },
                )
        return link, replaced

    def sim_beat(self, link: int) -> tuple[bool, str | None, str | None]:
        with self._cursor(write=True) as db:
            cur = db.execute(
                "UPDATE sim_links SET seen_at = ? WHERE id = ? AND closed_at IS NULL",
                (_ts(utcnow()), link),
            )
            if cur.rowcount:
                return True, None, None
            row = db.execute(
                "SELECT l.close_reason, r.host FROM sim_links l"
                " LEFT JOIN sim_links r ON r.id = l.replaced_by WHERE l.id = ?",
                (link,),
            ).fetchone()
            return False, row[0] if row else None, row[1] if row else None

    def sim_close(self, link: int, reason: str) -> None:
        with self._cursor(write=True) as db:
            db.execute(
                "UPDATE sim_links SET closed_at = ?, close_reason = ?"
                " WHERE id = ? AND closed_at IS NULL",
                (_ts(utcnow()), reason, link),
            )

    def sim_links(self, name: str | None = None, limit: int = 1000) -> list[SimLink]:
        with self._cursor() as db:
            rows = db.execute(
                "SELECT * FROM sim_links WHERE ? IS NULL OR session_name = ?"
                " ORDER BY id DESC LIMIT ?",
                (name, name, limit),
            ).fetchall()
        return [SimLink.model_validate(dict(r)) for r in rows]
