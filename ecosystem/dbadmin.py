"""`zapvisor db …`: the store's schema (status, migrate, its SQL) and moving an operator's
sessions from the embedded SQLite store to PostgreSQL or Supabase."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ecosystem.conversations import ConversationRows
from ecosystem.errors import ConfigError, StoreError, ZapvisorError
from ecosystem.paths import StatePaths
from ecosystem.settings import Settings
from ecosystem.states import RUNNING_STATES
from ecosystem.store import Store, migrations, open_postgres, open_store

ALL_EVENTS = 10**9


@dataclass
class DbStatus:
    store: str
    where: str
    reachable: bool
    latency_ms: float | None = None
    version: int | None = None
    latest: int = 0
    pending: list[str] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _dialect(kind: str) -> str:
    return "sqlite" if kind == "sqlite" else "postgres"


def status(settings: Settings) -> DbStatus:
    """Which store is selected, whether it answers, and its schema version."""
    kind = settings.store_kind
    found = migrations.load(_dialect(kind))
    latest = found[-1].version if found else 0
    try:
        store = open_store(settings)
    except ZapvisorError as exc:
        return DbStatus(kind, "?", False, latest=latest, error=str(exc))
    try:
        started = time.perf_counter()
        version = store.schema_version()
        elapsed = (time.perf_counter() - started) * 1000
        missing = migrations.pending(_dialect(kind), store.applied_versions())
        pending = [f"{m.version:04d}_{m.name}" for m in missing]
        return DbStatus(kind, store.describe(), True, round(elapsed, 1), version, latest, pending)
    except ZapvisorError as exc:
        return DbStatus(kind, store.describe(), False, latest=latest, error=str(exc))
    finally:
        store.close()


def migrate(settings: Settings) -> tuple[str, list[str]]:
    """Apply pending migrations to the selected store; returns where, and what ran.

    A Supabase project's schema is changed through its database connection string
    (ZAPVISOR_DATABASE_URL), since its REST API cannot run DDL."""
    if settings.store_kind == "supabase" and settings.database_url is not None:
        store = open_postgres(settings)
    else:
        store = open_store(settings)
    try:
        return store.describe(), store.migrate()
    finally:
        store.close()


def sql_script(settings: Settings, everything: bool = False) -> str:
    """The PostgreSQL migrations the selected store still needs, as one script for a
    SQL editor (all of them with ``everything``, or when the store cannot tell)."""
    from ecosystem.store import pgcommon

    applied: set[int] = set()
    if not everything and settings.store_kind != "sqlite":
        store = open_store(settings)
        try:
            applied = store.applied_versions()
        except StoreError:
            applied = set()
        finally:
            store.close()
    return pgcommon.migration_script(applied)


@dataclass
class CopyReport:
    target: str
    sessions: list[str]
    events: int
    webhooks: int = 0
    """Webhook outbox rows (pending, delivered and dead letters)."""
    health: int = 0
    """Health monitor records (restart counts, why down, parked)."""
    alerts: int = 0
    conversations: int = 0
    """The bot's conversations, each with its messages."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _target(settings: Settings, to: str) -> Store:
    if to == "postgres":
        return open_postgres(settings)
    if to == "supabase":
        if not settings.supabase_url:
            raise ConfigError("SUPABASE_URL is not set: set it and SUPABASE_SERVICE_ROLE_KEY")
        return open_store(settings)
    raise ConfigError(f"cannot copy to {to!r}: choose postgres or supabase")


def running_runners(paths: StatePaths) -> list[str]:
    """Programs supervisord runs on this host now (they write to the store they were
    started with)."""
    from ecosystem.supctl import daemon

    if not paths.socket.exists() or not paths.credentials.exists():
        return []
    sup = daemon.client(paths)
    if not daemon.is_up(sup):
        return []
    return sorted(
        name for name, info in sup.all_process_info().items() if info.state in RUNNING_STATES
    )


def copy(settings: Settings, to: str, *, actor: str) -> CopyReport:
    """Copy every session and event of this machine's SQLite store into ``to``, every
    field kept (the token hash, timestamps, JSON), with the sessions' webhook outboxes
    (pending events are delivered from the new store), health records and the alerts,
    all or nothing. The SQLite file is left as it was."""
    from ecosystem.store.sqlite import SQLiteStore

    paths = StatePaths(settings.home)
    source_path = settings.home / "zapvisor.db"
    if not source_path.exists():
        raise StoreError(f"there is no SQLite store at {source_path}: nothing to copy")
    busy = running_runners(paths)
    if busy:
        raise ZapvisorError(
            f"{len(busy)} runner(s) are running and report to the SQLite store "
            f"({', '.join(busy[:5])}): run `zapvisor shutdown` first, copy, then set the "
            "new store's variables and run `zapvisor apply`"
        )
    source = SQLiteStore(source_path)
    target = _target(settings, to)
    try:
        version = target.schema_version()
        if version < migrations.load("postgres")[-1].version:
            raise StoreError(
                f"the {to} store at {target.describe()} is at schema v{version}: run "
                "`zapvisor db migrate` first"
            )
        sessions = source.list_sessions()
        events = source.list_events(limit=ALL_EVENTS)
        outbox = [  # oldest first, so the target's ids keep the order
            row
            for s in sessions
            for row in reversed(source.list_webhooks(s.name, limit=ALL_EVENTS))
        ]
        health = list(source.list_health().values())
        alerts = source.list_alerts(limit=ALL_EVENTS)
        chats = [
            (c, source.recent_messages(s.name, c.contact, ALL_EVENTS))
            for s in sessions
            for c in source.list_conversations(s.name, ALL_EVENTS)
        ]
        target.import_rows(
            sessions, events, actor=actor, outbox=outbox, health=health, alerts=alerts
        )
        _copy_conversations(target, chats)
        report = CopyReport(
            target.describe(),
            [s.name for s in sessions],
            len(events),
            webhooks=len(outbox),
            health=len(health),
            alerts=len(alerts),
            conversations=len(chats),
        )
        detail = {"from": source.describe(), **asdict(report)}
        detail["sessions"] = len(sessions)
        del detail["target"]
        target.add_event(None, "import", actor=actor, detail=detail)
        return report
    finally:
        source.close()
        target.close()


def _copy_conversations(target: Store, chats: list[ConversationRows]) -> None:
    """The bot's conversations, after their sessions (a second transaction: the
    sessions' import function predates them)."""
    if not chats:
        return
    try:
        target.import_conversations(chats)
    except ZapvisorError as exc:
        raise StoreError(
            f"the sessions were copied, the bot's conversations were not ({exc}): the bots "
            "start their conversations afresh; nothing is lost in the SQLite file"
        ) from None
