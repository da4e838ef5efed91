"""What the postgres and supabase stores share: the schema's SQL functions, how rows and
changes travel as JSON, and how the functions' errors become the contract's errors.

Both stores call the same SQL functions (migrations/postgres/0001_init.sql), one over a
psycopg connection, one through PostgREST's RPC, so every rule (the port choice, the
audit trail) lives once, in the database.
"""

from __future__ import annotations

import json
import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from ecosystem.errors import (
    CannotMove,
    HostUnavailable,
    LeaseHeld,
    LeaseLost,
    NotThisHost,
    SchemaMissing,
    SessionExists,
    SessionNotFound,
    StoreError,
    ZapvisorError,
)
from ecosystem.fleet import records
from ecosystem.health.model import Alert, SessionHealth
from ecosystem.ports import capacity_error, ports_exhausted
from ecosystem.record import Record
from ecosystem.session import Event, Session
from ecosystem.store import migrations, pg_health, pg_outbox
from ecosystem.store.rowcache import RowCache
from ecosystem.webhook_events import WebhookEvent

if TYPE_CHECKING:
    from ecosystem.models import NewSession

VERSION_TABLE = "zapvisor_schema_migrations"
NOTIFY_CHANNEL = "zapvisor_sessions"
MIGRATION_LOCK = 0x7A617076  # "zapv": one migrator at a time per database

BOOTSTRAP_SQL = f"""CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)"""

# SQLSTATEs raised by the schema's functions.
NAME_TAKEN, AT_CAPACITY, NO_FREE_PORT, NO_SUCH_SESSION = "ZV001", "ZV002", "ZV003", "ZV004"
NOT_IN_OUTBOX = "ZV005"
LEASE_LOST, NOT_THIS_HOST, LEASE_HELD, HOST_SILENT, CANNOT_MOVE = (
    "ZV006",
    "ZV007",
    "ZV008",
    "ZV009",
    "ZV010",
)
HOST_TAKEN, NO_SUCH_HOST, HOST_HOLDS_SESSIONS = "ZVH01", "ZVH02", "ZVH03"
SCHEMA_MISSING = frozenset({"42P01", "42883", "PGRST202", "PGRST205", "PGRST200"})
"""Undefined table/function (PostgreSQL's codes and PostgREST's): no migrations yet."""


def latest_version() -> int:
    found = migrations.load("postgres")
    return found[-1].version if found else 0


def migration_script(applied: set[int] | None = None) -> str:
    """The SQL of every migration not in ``applied``, each recording itself in the
    version table, in one transaction: what `zapvisor db sql` prints for a SQL editor."""
    parts = ["BEGIN;", BOOTSTRAP_SQL + ";"]
    for mig in migrations.pending("postgres", applied or set()):
        parts.append(f"-- {mig.version:04d}_{mig.name}\n{mig.sql.strip()}")
        # names match [a-z0-9_]+ (migrations._FILE): nothing to quote
        insert = f"INSERT INTO {VERSION_TABLE} (version, name)"
        parts.append(f"{insert} VALUES ({mig.version}, '{mig.name}');")
    parts.append("COMMIT;")
    return "\n\n".join(parts) + "\n"


# -- rows and changes as JSON ------------------------------------------------------------


def to_json_value(value: Any) -> Any:
    """A model value as PostgreSQL's json population functions read it."""
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "value"):  # StrEnum
        return str(value)
    return value


def new_session_json(new: NewSession, host: str, api_token_hash: str | None) -> dict[str, Any]:
    data = {k: to_json_value(v) for k, v in new.model_dump().items()}
    data["session_name"] = data.pop("name")
    data["host"] = host
    data["api_token_hash"] = api_token_hash
    return data


def changes_json(changes: Mapping[str, Any]) -> dict[str, Any]:
    return {k: to_json_value(v) for k, v in changes.items()}


M = TypeVar("M", bound=Record)
_TIME_FIELDS = {
    Session: ("qr_expires_at", "created_at", "updated_at", "connected_at", "last_activity_at"),
    Event: ("ts",),
}


def _utc(model: M) -> M:
    # A server whose TimeZone is not UTC hands back local times; zapvisor speaks UTC.
    for field in _TIME_FIELDS[type(model)]:
        value = getattr(model, field)
        if value is not None and value.utcoffset():
            setattr(model, field, value.astimezone(UTC))
    return model


def session_from_row(row: Mapping[str, Any]) -> Session:
    data = dict(row)
    data["name"] = data.pop("session_name")
    session = _utc(Session.model_validate(data))
    session.api_token_hash = data.get("api_token_hash")
    return session


def row_key(row: Mapping[str, Any]) -> Hashable:
    """A row's values as a key (its JSON values as their text): equal keys, equal rows."""
    return tuple(
        json.dumps(v, sort_keys=True, default=str) if isinstance(v, dict | list) else v
        for v in row.values()
    )


def session_cache() -> RowCache[Mapping[str, Any], Session]:
    """A session record is made again only for a row that changed (store/rowcache.py)."""
    return RowCache(session_from_row, row_key)


def session_to_row(session: Session) -> dict[str, Any]:
    """Every column of a session, for import_rows (the token hash included)."""
    data = {k: to_json_value(v) for k, v in session.model_dump().items()}
    data["session_name"] = data.pop("name")
    data["api_token_hash"] = session.api_token_hash
    return data


def event_from_row(row: Mapping[str, Any]) -> Event:
    data = dict(row)
    if isinstance(data.get("detail"), str):
        data["detail"] = json.loads(data["detail"])
    return _utc(Event.model_validate(data))


def event_to_row(event: Event) -> dict[str, Any]:
    data = {k: to_json_value(v) for k, v in event.model_dump().items()}
    data.pop("id")
    return data


# -- errors ------------------------------------------------------------------------------


def contract_error(
    code: str | None,
    detail: str | None,
    *,
    name: str = "",
    ports: range | None = None,
    host: str = "",
    max_sessions: int = 0,
) -> ZapvisorError | None:
    """The contract's exception for an error raised by one of the schema's functions
    (the same messages as the sqlite store), or None when ``code`` is not one of them."""
    if code == NAME_TAKEN:
        if detail:  # zapvisor_import: the names already there
            return SessionExists(f"sessions already in the target store: {detail}")
        return SessionExists(f"a session named {name!r} already exists")
    if code == AT_CAPACITY:
        return capacity_error(max_sessions, host)
    if code == NO_FREE_PORT and ports is not None:
        try:
            busy = [int(p) for p in json.loads(detail or "[]")]
        except (ValueError, TypeError):
            busy = []
        return ports_exhausted(ports, busy, host)
    if code == NO_SUCH_SESSION:
        return SessionNotFound(f"no session named {name!r} (see `zapvisor list`)")
    if code == NOT_IN_OUTBOX:
        return StoreError(f"webhook event {detail} is not in the outbox")
    if code == HOST_TAKEN:
        return records.host_exists(host)
    if code == NO_SUCH_HOST:
        return records.host_not_found(host)
    if code == HOST_HOLDS_SESSIONS:
        return records.host_busy(host, [s for s in (detail or "").split(",") if s])
    return lease_error(code, detail, name=name)


def _detail_json(detail: str | None) -> dict[str, Any]:
    try:
        value = json.loads(detail or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def lease_error(code: str | None, detail: str | None, *, name: str = "") -> ZapvisorError | None:
    """The failover functions' errors (migrations/postgres/0009_failover.sql)."""
    if code == LEASE_LOST:
        info = _detail_json(detail)
        session = info.get("session") or name
        holder, epoch = info.get("holder"), info.get("epoch")
        now = f"{holder} holds it (epoch {epoch})" if holder else "it was handed over"
        return LeaseLost(
            f"session {session}'s lease is no longer this runner's: {now}",
            holder=holder,
            epoch=epoch,
        )
    if code == NOT_THIS_HOST:
        return NotThisHost(f"session {name} runs on host {detail} now", host=detail or "")
    if code == LEASE_HELD:
        info = _detail_json(detail)
        if info.get("move_to") or info.get("offered_to"):
            target = info.get("move_to") or info.get("offered_to")
            return LeaseHeld(f"session {name} is being moved to {target}")
        return LeaseHeld(
            f"session {name}'s lease is held by {info.get('holder')} until {info.get('expires_at')}"
        )
    if code == HOST_SILENT:
        info = _detail_json(detail)
        seen = info.get("beat_at")
        since = f"its last heartbeat was at {seen}" if seen else "it never sent a heartbeat"
        return HostUnavailable(f"host {info.get('host')} is not answering: {since}")
    if code == CANNOT_MOVE:
        reasons = {
            "same host": f"session {name} already runs on that host",
            "local auth": (
                f"session {name} keeps its WhatsApp auth in files on its host (auth local): "
                "it cannot move without a new QR"
            ),
            "moving": f"session {name} is already being moved",
            "linked": (
                f"session {name} is linked to a phone: its auth cannot change place; "
                f"`zapvisor logout {name}` first, then pair it again"
            ),
        }
        return CannotMove(reasons.get(detail or "", f"session {name} cannot move: {detail}"))
    return None


def schema_missing(store: str) -> SchemaMissing:
    return SchemaMissing(
        f"the {store} has no zapvisor schema (or an older one): run `zapvisor db migrate`"
    )


_URL_PASSWORD = re.compile(r"(?P<keep>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]*@", re.IGNORECASE)
_KV_PASSWORD = re.compile(r"(?P<keep>\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` without passwords: URL userinfo and ``password=`` values masked, and
    every given secret replaced wherever it appears."""
    text = _URL_PASSWORD.sub(lambda m: m["keep"] + "***@", text)
    text = _KV_PASSWORD.sub(lambda m: m["keep"] + "***", text)
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    return text


def first_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return lines[0] if lines else "unknown error"


def ordered_events(events: Sequence[Event]) -> list[Event]:
    """Oldest first, the order import_rows inserts them in."""
    return sorted(events, key=lambda e: (e.ts, e.id))


def import_document(
    sessions: Sequence[Session],
    events: Sequence[Event],
    outbox: Sequence[WebhookEvent],
    health: Sequence[SessionHealth],
    alerts: Sequence[Alert],
) -> dict[str, Any]:
    """What ``zapvisor_import(p_rows)`` takes: every row of a `zapvisor db copy`.
    Events and alerts go in oldest first (outbox rows in the order given), so new ids
    keep the order."""
    return {
        "sessions": [session_to_row(s) for s in sessions],
        "events": [event_to_row(e) for e in ordered_events(events)],
        "hosts": [],
        "outbox": [pg_outbox.event_to_json(o) for o in outbox],
        "health": [pg_health.health_to_json(h, h.updated_at) for h in health],
        "alerts": [pg_health.alert_to_json(a) for a in sorted(alerts, key=lambda a: a.id)],
    }
