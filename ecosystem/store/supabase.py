"""The supabase store: the same contract over a Supabase project's REST API (PostgREST).

It uses `postgrest`, supabase-py's PostgREST client (the part of `supabase.create_client`
that talks to the database; zapvisor depends on it alone, without the auth, storage and
realtime clients, which cost ~0.3 s more to import and are not needed), with the
service role key. Writes are RPC calls of the SQL
functions the migrations create, so the port reservation is the same atomic function the
postgres store calls; the webhook outbox and the health records (pg_outbox.py,
pg_health.py) are RPC calls only, the same functions as the postgres store's. Live
updates poll (``poll_interval``).

The schema cannot be created over REST: `zapvisor db migrate` needs the project's
connection string in ZAPVISOR_DATABASE_URL, or `zapvisor db sql` prints the SQL for the
dashboard's SQL editor.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import httpx
from postgrest import APIError, SyncPostgrestClient
from postgrest.types import ReturnMethod

from ecosystem.errors import ConfigError, SessionNotFound, StoreError, ZapvisorError
from ecosystem.health.model import Alert, SessionHealth
from ecosystem.lease import Fence
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
from ecosystem.store.pgfunctions import Returns
from ecosystem.webhook_events import WebhookEvent

if TYPE_CHECKING:
    from ecosystem.models import NewSession

T = TypeVar("T")
FENCE_HEADER = "X-Zapvisor-Fence"


def _json_rows(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list):
        return [r for r in data if isinstance(r, dict)]
    return []


class SupabaseStore(PgSessions, PgOutbox, PgHealth, PgLease, PgHosts, PgConversations, Store):
    kind = "supabase"
    poll_interval = 2.0
    """Seconds between two looks at the sessions when waiting for a change (one small
    REST request each)."""

    def __init__(self, url: str, key: str, *, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"SUPABASE_URL must be the project's URL (https://<ref>.supabase.co), got {url!r}"
            )
        if not key:
            raise ConfigError(
                "SUPABASE_URL is set but SUPABASE_SERVICE_ROLE_KEY is not: zapvisor needs the "
                "service role key (Project Settings → API); the anon key cannot read sessions"
            )
        self.url = url.rstrip("/")
        self._key = key
        self._sessions_made = pg.session_cache()
        headers = {
            "apikey": key,
            "Authorization": f"Bearer {key}",
            "Accept": "application/json",
            "Content-Type": "application/json",
            "X-Client-Info": "zapvisor",
        }
        rest = f"{self.url}/rest/v1"
        self._client = SyncPostgrestClient(
            rest,
            headers=headers,
            http_client=httpx.Client(
                base_url=rest,
                headers=headers,
                timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
                follow_redirects=True,
            ),
            # Our callers retry on their own terms (the runner's reporter, the TUI's
            # next tick); a built-in sleep-and-retry would only delay the error.
            retry_enabled=False,
        )

    @property
    def name(self) -> str:
        return f"supabase store at {self.url}"

    def describe(self) -> str:
        return f"supabase {self.url}"

    def close(self) -> None:
        self._client.session.close()

    def set_fence(self, fence: Fence | None) -> None:
        """PostgREST hands request headers to SQL (``request.headers``), where the fence
        guard (0009) reads this one."""
        self.fence = fence
        if fence is None:
            self._client.headers.pop(FENCE_HEADER, None)
        else:
            self._client.headers[FENCE_HEADER] = fence.token

    # -- plumbing ------------------------------------------------------------------

    def _call(self, fn: Callable[[], T], **context: Any) -> T:
        try:
            return fn()
        except APIError as exc:
            raise self._error(exc, **context) from None
        except httpx.HTTPError as exc:
            cause = pg.redact(str(exc) or type(exc).__name__, [self._key])
            raise StoreError(f"the {self.name} is unreachable: {cause}") from None

    def _error(self, exc: APIError, **context: Any) -> ZapvisorError:
        details = exc.details if isinstance(exc.details, str) else None
        found = pg.contract_error(exc.code, details, **context)
        if found is not None:
            return found
        if exc.code in pg.SCHEMA_MISSING:
            return pg.schema_missing(self.name)
        message = pg.redact(pg.first_line(exc.message or str(exc.code)), [self._key])
        if exc.code in ("42501", "401", "403", "PGRST301", "PGRST302"):
            return StoreError(
                f"the {self.name} refused the key: {message} (SUPABASE_SERVICE_ROLE_KEY must "
                "be the project's service_role key)"
            )
        code = f" ({exc.code})" if exc.code else ""
        return StoreError(f"the {self.name} failed: {message}{code}")

    def _rpc(self, fn: str, params: dict[str, Any], **context: Any) -> Any:
        return self._call(lambda: self._client.rpc(fn, params).execute().data, **context)

    def call_function(
        self,
        function: str,
        args: dict[str, Any],
        /,
        *,
        returns: Returns,
        write: bool,
        **context: Any,
    ) -> Any:
        data = self._rpc(function, args, **context)
        if returns == "rows":
            return _json_rows(data)
        return data if returns == "value" else None

    # -- schema --------------------------------------------------------------------

    def migrate(self) -> list[str]:
        current = self.schema_version()
        if not migrations.pending("postgres", self.applied_versions()):
            return []
        raise StoreError(
            f"the {self.name} is at schema v{current} and cannot change its schema over the "
            "REST API: set ZAPVISOR_DATABASE_URL to the project's connection string "
            "(Project Settings → Database) and run `zapvisor db migrate`, or paste the "
            "output of `zapvisor db sql` into the dashboard's SQL editor"
        )

    def applied_versions(self) -> set[int]:
        def op() -> set[int]:
            data = self._client.table(pg.VERSION_TABLE).select("version").execute().data
            return {int(row["version"]) for row in _json_rows(data)}

        try:
            return self._call(op)
        except StoreError as exc:
            if "no zapvisor schema" in str(exc):
                return set()
            raise

    def schema_version(self) -> int:
        def op() -> int:
            data = (
                self._client.table(pg.VERSION_TABLE)
                .select("version")
                .order("version", desc=True)
                .limit(1)
                .execute()
                .data
            )
            rows = _json_rows(data)
            return int(rows[0]["version"]) if rows else 0

        try:
            return self._call(op)
        except StoreError as exc:
            if "no zapvisor schema" in str(exc):
                return 0
            raise

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
        row = self._rpc(
            "zapvisor_create_session",
            {
                "p_session": pg.new_session_json(new, host, api_token_hash),
                "p_port_first": ports.start,
                "p_port_last": ports.stop - 1,
                "p_exclude": sorted(set(exclude_ports)),
                "p_max_sessions": max_sessions,
                "p_actor": actor,
            },
            name=new.name,
            ports=ports,
            host=host,
            max_sessions=max_sessions,
        )
        return pg.session_from_row(_json_rows(row)[0])

    def get_session(self, name: str) -> Session:
        data = self._call(
            lambda: (
                self._client.table("whatsapp_sessions")
                .select("*")
                .eq("session_name", name)
                .execute()
                .data
            )
        )
        rows = _json_rows(data)
        if not rows:
            raise SessionNotFound(f"no session named {name!r} (see `zapvisor list`)")
        return pg.session_from_row(rows[0])

    def list_sessions(self, host: str | None = None) -> list[Session]:
        def op() -> Any:
            query = self._client.table("whatsapp_sessions").select("*")
            if host is not None:
                query = query.eq("host", host)
            return query.order("session_name").execute().data

        return self._sessions_made.records(host, _json_rows(self._call(op)))

    def delete_session(self, name: str, *, actor: str) -> None:
        self._rpc("zapvisor_delete_session", {"p_name": name, "p_actor": actor}, name=name)

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
        return int(self._rpc("zapvisor_import", {"p_rows": rows}) or 0)

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
        row = {
            "session_name": session_name,
            "actor": actor,
            "action": action,
            "detail": json.loads(json.dumps(dict(detail or {}), default=str)),
        }
        if ts is not None:  # else the column's default: the database's now()
            row["ts"] = ts.isoformat()
        self._call(
            lambda: (
                self._client.table("session_events")
                .insert(row, returning=ReturnMethod.minimal)
                .execute()
            )
        )

    def list_events(self, session_name: str | None = None, limit: int = 100) -> list[Event]:
        def op() -> Any:
            query = self._client.table("session_events").select("*")
            if session_name is not None:
                query = query.eq("session_name", session_name)
            return query.order("id", desc=True).limit(limit).execute().data

        return [pg.event_from_row(r) for r in _json_rows(self._call(op))]
