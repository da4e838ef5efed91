"""The postgres store: sessions in any PostgreSQL, a Supabase project's database included.

Every write is one call of a SQL function from the shipped migrations, so the port
reservation is atomic in the database; the connection handling is postgres_conn.py, the
webhook outbox and health records pg_outbox.py and pg_health.py (shared with the
supabase store). Live updates: a second connection LISTENs for the schema's NOTIFY.

Imported only when ZAPVISOR_DATABASE_URL selects this store (psycopg costs ~0.3 s).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Hashable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.types.json import Jsonb

from ecosystem.errors import SessionNotFound, StoreError
from ecosystem.health.model import Alert, SessionHealth
from ecosystem.session import Event, Session
from ecosystem.store import migrations
from ecosystem.store import pgcommon as pg
from ecosystem.store.base import Store
from ecosystem.store.pg_conversations import PgConversations
from ecosystem.store.pg_health import PgHealth
from ecosystem.store.pg_hosts import PgHosts
from ecosystem.store.pg_lease import PgLease
from ecosystem.store.pg_outbox import PgOutbox
from ecosystem.store.pg_sessions import PgSessions
from ecosystem.store.pgwatch import Watchdog
from ecosystem.store.postgres_conn import ANSWER_TIMEOUT, MIGRATE_TIMEOUT, Conn, Cur, PgConnection
from ecosystem.webhook_events import WebhookEvent

if TYPE_CHECKING:
    from ecosystem.models import NewSession

CLOSE_WAIT = 2.0
"""Seconds close() waits for a call it cut short to let go of the connection."""
POOLED_POLL_INTERVAL = 1.0
"""Seconds between two looks at the sessions when LISTEN cannot be used: within a
second, as with NOTIFY, for one cheap query (a count and a max) per watcher."""


class PostgresStore(
    PgConnection, PgSessions, PgOutbox, PgHealth, PgLease, PgHosts, PgConversations, Store
):
    kind = "postgres"
    poll_interval = 5.0
    """LISTEN/NOTIFY wakes watchers at once; this slow look is the safety net for a
    pooler in front of the server that does not pass notifications on."""

    def __init__(
        self,
        dsn: str,
        *,
        connect_timeout: float = 5.0,
        transaction_pooled: bool | None = None,
    ) -> None:
        """``transaction_pooled``: whether a transaction pooler stands between us and the
        server (None: judged by the DSN's port, 6543 being Supabase's)."""
        super().__init__(dsn, connect_timeout=connect_timeout)
        if transaction_pooled is not None:
            self.transaction_pooled = transaction_pooled
        self._listen_lock = threading.Lock()
        self._listen_watchdog = Watchdog()
        self._listener: Conn | None = None
        self._listener_lost = False
        self._listen_refused: str | None = None
        self._sessions_made = pg.session_cache()
        if self.transaction_pooled:
            # A transaction pooler hands each transaction any server connection: a
            # LISTEN would stay behind on one of them (Supavisor may reject it), and no
            # notification would reach us. Look at the sessions every second instead.
            self.poll_interval = POOLED_POLL_INTERVAL

    @property
    def pushes_changes(self) -> bool:  # type: ignore[override]
        return not (self.transaction_pooled or self._listen_refused)

    @property
    def live_updates(self) -> str:
        """How watchers learn of changes, for `zapvisor doctor`."""
        polling = f"live updates by polling every {self.poll_interval:g} s"
        if self.transaction_pooled:
            return f"{polling} (transaction pooler: no LISTEN)"
        if self._listen_refused:
            return f"{polling} (LISTEN refused: {self._listen_refused})"
        return "live updates by LISTEN/NOTIFY"

    def describe(self) -> str:
        user = f"{self._user}@" if self._user else ""
        return f"postgres {user}{self._where}"

    def close(self) -> None:
        """Never waits on the server: a call stuck on a frozen one is cut short first
        (it fails with the store's timeout error in its own thread)."""
        self._watchdog.abort()
        self._listen_watchdog.abort()
        if self._lock.acquire(timeout=CLOSE_WAIT):
            try:
                self._drop()
            finally:
                self._lock.release()
        # else the cut-short call drops its connection itself on the way out
        self._watchdog.stop()
        if self._listen_lock.acquire(timeout=CLOSE_WAIT):
            try:
                if self._listener is not None:
                    self._listener.close()
                    self._listener = None
            finally:
                self._listen_lock.release()
        self._listen_watchdog.stop()

    # -- schema --------------------------------------------------------------------

    def migrate(self) -> list[str]:
        def op(cur: Cur) -> list[str]:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (pg.MIGRATION_LOCK,))
            cur.execute(pg.BOOTSTRAP_SQL)
            cur.execute(f"SELECT version FROM {pg.VERSION_TABLE}")  # noqa: S608 - constant
            done = {row["version"] for row in cur.fetchall()}
            applied = []
            for mig in migrations.load("postgres"):
                if mig.version in done:
                    continue
                cur.execute(mig.sql.encode("utf-8"))
                cur.execute(
                    f"INSERT INTO {pg.VERSION_TABLE} (version, name) VALUES (%s, %s)",  # noqa: S608
                    (mig.version, mig.name),
                )
                applied.append(f"{mig.version:04d}_{mig.name}")
            return applied

        return self._run(op, write=True, timeout=MIGRATE_TIMEOUT)

    def check_writable(self) -> None:
        def op(cur: Cur) -> bool:
            cur.execute("SELECT current_setting('transaction_read_only') = 'on' AS ro")
            row = cur.fetchone()
            return bool(row and row["ro"])

        if self._run(op, write=False):
            raise StoreError(
                f"the {self.describe()} store is read-only (a standby, or "
                "default_transaction_read_only): it refuses every write"
            )

    def applied_versions(self) -> set[int]:
        if not self.schema_version():
            return set()

        def op(cur: Cur) -> set[int]:
            cur.execute(f"SELECT version FROM {pg.VERSION_TABLE}")  # noqa: S608 - constant
            return {int(row["version"]) for row in cur.fetchall()}

        return self._run(op, write=False)

    def schema_version(self) -> int:
        def op(cur: Cur) -> int:
            cur.execute("SELECT to_regclass(%s) IS NOT NULL AS present", (pg.VERSION_TABLE,))
            row = cur.fetchone()
            if not row or not row["present"]:
                return 0
            cur.execute(f"SELECT max(version) AS v FROM {pg.VERSION_TABLE}")  # noqa: S608
            row = cur.fetchone()
            return int(row["v"] or 0) if row else 0

        return self._run(op, write=False)

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
        excluded = sorted(set(exclude_ports))

        def op(cur: Cur) -> Session:
            cur.execute(
                "SELECT * FROM zapvisor_create_session(%s, %s, %s, %s::integer[], %s, %s)",
                (
                    Jsonb(pg.new_session_json(new, host, api_token_hash)),
                    ports.start,
                    ports.stop - 1,
                    excluded,
                    max_sessions,
                    actor,
                ),
            )
            row = cur.fetchone()
            assert row is not None
            return pg.session_from_row(row)

        return self._run(
            op, write=True, name=new.name, ports=ports, host=host, max_sessions=max_sessions
        )

    def get_session(self, name: str) -> Session:
        def op(cur: Cur) -> Session:
            cur.execute("SELECT * FROM whatsapp_sessions WHERE session_name = %s", (name,))
            row = cur.fetchone()
            if row is None:
                raise SessionNotFound(f"no session named {name!r} (see `zapvisor list`)")
            return pg.session_from_row(row)

        return self._run(op, write=False)

    def list_sessions(self, host: str | None = None) -> list[Session]:
        def op(cur: Cur) -> list[Session]:
            if host is None:
                cur.execute("SELECT * FROM whatsapp_sessions ORDER BY session_name")
            else:
                cur.execute(
                    "SELECT * FROM whatsapp_sessions WHERE host = %s ORDER BY session_name",
                    (host,),
                )
            return self._sessions_made.records(host, cur.fetchall())

        return self._run(op, write=False)

    def delete_session(self, name: str, *, actor: str) -> None:
        def op(cur: Cur) -> None:
            cur.execute("SELECT zapvisor_delete_session(%s, %s)", (name, actor))

        self._run(op, write=True, name=name)

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
        rows = pg.import_document(sessions, events, outbox, health, alerts)
        count = self.call_function("zapvisor_import", {"p_rows": rows}, returns="value", write=True)
        return int(count or 0)

    # -- events --------------------------------------------------------------------

    def add_event(
        self,
        session_name: str | None,
        action: str,
        *,
        actor: str,
        detail: Mapping[str, Any] | None = None,
        ts: datetime | None = None,
    ) -> None:
        text = json.dumps(dict(detail or {}), ensure_ascii=False, default=str)

        def op(cur: Cur) -> None:
            cur.execute(
                "INSERT INTO session_events (ts, session_name, actor, action, detail)"
                " VALUES (coalesce(%s::timestamptz, now()), %s, %s, %s, %s::jsonb)",
                (ts, session_name, actor, action, text),
            )

        self._run(op, write=True)

    def list_events(self, session_name: str | None = None, limit: int = 100) -> list[Event]:
        def op(cur: Cur) -> list[Event]:
            if session_name is None:
                cur.execute("SELECT * FROM session_events ORDER BY id DESC LIMIT %s", (limit,))
            else:
                cur.execute(
                    "SELECT * FROM session_events WHERE session_name = %s"
                    " ORDER BY id DESC LIMIT %s",
                    (session_name, limit),
                )
            return [pg.event_from_row(r) for r in cur.fetchall()]

        return self._run(op, write=False)

    # -- live updates --------------------------------------------------------------

    cheap_change_marker = True

    def change_marker(self) -> Hashable:
        """Moves with every committed change of a session row. Not the newest
        ``updated_at`` alone: a transaction that began first and commits last writes an
        older time than one already seen, and the monitor would skip its change. Every
        row version has its writer's transaction id (``xmin``): their sum moves with
        each update, insert or delete (a scan of the rows' headers, ~0.2 ms at 200)."""

        def op(cur: Cur) -> Hashable:
            cur.execute(
                "SELECT count(*) AS n, max(updated_at) AS m, sum(xmin::text::bigint) AS x"
                " FROM whatsapp_sessions"
            )
            row = cur.fetchone()
            return (row["n"], row["m"], row["x"]) if row else None

        return self._run(op, write=False)

    def wait_for_change(self, timeout: float) -> bool:
        """LISTEN on the schema's channel: True as soon as any session row changes."""
        if self.transaction_pooled or self._listen_refused:
            return Store.wait_for_change(self, timeout)
        deadline = time.monotonic() + timeout
        with self._listen_lock:
            if self._listener is None:
                self._listener = self._connect()
                try:
                    with self._listen_watchdog.bound(self._listener, ANSWER_TIMEOUT):
                        self._listener.execute(f"LISTEN {pg.NOTIFY_CHANNEL}")
                except psycopg.Error as exc:
                    broken = self._listener.broken or self._listener.closed
                    self._listener.close()
                    self._listener = None
                    if self._listen_watchdog.fired:
                        raise self._no_answer(f"{ANSWER_TIMEOUT:g} s") from None
                    if broken:
                        raise self._unreachable(exc) from None
                    # the server (a standby) or a pooler refused LISTEN itself: the store
                    # answers, so watch it by polling rather than report an outage
                    self._listen_refused = pg.redact(pg.first_line(str(exc)), self._secrets)
                    self.poll_interval = POOLED_POLL_INTERVAL
                    return Store.wait_for_change(self, max(0.0, deadline - time.monotonic()))
                self._change_baseline = self.change_marker()
                if self._listener_lost:
                    self._listener_lost = False
                    return True  # changes made while we were cut off were not heard
            listener = self._listener
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                wait = min(remaining, self.poll_interval)
                try:
                    # notifies() ends by itself; the bound lets close() cut it short
                    with self._listen_watchdog.bound(listener, wait + ANSWER_TIMEOUT):
                        heard = any(True for _ in listener.notifies(timeout=wait, stop_after=1))
                        if heard:
                            for _ in listener.notifies(timeout=0.01):
                                pass  # drain the burst one change usually is
                except psycopg.Error as exc:
                    listener.close()
                    self._listener = None
                    self._listener_lost = True
                    if self._listen_watchdog.fired:
                        raise self._no_answer(f"{wait + ANSWER_TIMEOUT:g} s") from None
                    raise self._unreachable(exc) from None
                marker = self.change_marker()
                if heard or marker != self._change_baseline:
                    self._change_baseline = marker
                    return True
