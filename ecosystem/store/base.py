"""The store contract every implementation (sqlite, postgres, supabase) honours."""

from __future__ import annotations

import abc
import time
from collections.abc import Hashable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ecosystem.errors import InvalidValue, StoreUnsupported
from ecosystem.fleet.records import HostRecord, NewHost
from ecosystem.health.model import Alert, NewAlert, SessionHealth
from ecosystem.redact import redact_url
from ecosystem.session import OPERATOR_FIELDS, RUNTIME_FIELDS, Event, Session
from ecosystem.store.base_conversations import ConversationMethods
from ecosystem.store.base_lease import LeaseMethods
from ecosystem.webhook_events import DeliveryState, WebhookEvent

if TYPE_CHECKING:
    from ecosystem.models import NewSession

NO_OUTBOX = "has no webhook outbox: webhooks are off"
NO_HEALTH = "does not keep session health"
NO_ALERTS = "does not keep alerts"
NO_HOSTS = "keeps no fleet hosts"
"""What a store without that part of the contract says (StoreUnsupported): the one way
a store says it does not do something, whatever the caller then falls back on."""

DEFAULT_WEBHOOK_LEASE = timedelta(seconds=60)
"""How long :meth:`Store.due_webhooks` hands an event to one caller by default."""


class Store(LeaseMethods, ConversationMethods, abc.ABC):
    """Session rows, the port ledger and the audit trail.

    Every method is blocking; UI code calls them from worker threads.
    """

    kind: str = "?"

    poll_interval: float = 1.0
    """Seconds between two looks at the sessions in the polling :meth:`wait_for_change`."""

    _change_baseline: Hashable | None = None

    @abc.abstractmethod
    def describe(self) -> str:
        """Where the data lives, without secrets (a path, a host/db name)."""

    @abc.abstractmethod
    def migrate(self) -> list[str]:
        """Apply pending migrations; returns the names of those applied."""

    @abc.abstractmethod
    def schema_version(self) -> int:
        """The newest migration applied (0 for an empty database)."""

    def applied_versions(self) -> set[int]:
        """Every migration applied (an older one may still be missing: see
        migrations.pending). A store that cannot list them says every shipped one up
        to schema_version."""
        from ecosystem.store import migrations  # read by schema work alone, never a runner

        newest = self.schema_version()
        dialect = "sqlite" if self.kind == "sqlite" else "postgres"
        return {m.version for m in migrations.load(dialect) if m.version <= newest}

    def check_writable(self) -> None:
        """Raise StoreError when the store would refuse a write now (`zapvisor doctor`
        asks: reads alone said OK for a store that refused every write). Changes no
        data. Stores that cannot tell without writing data do nothing."""
        return None

    @abc.abstractmethod
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
        """Insert the session and reserve its port in one atomic step.

        The port is the lowest of ``ports`` not held by another session of ``host`` and
        not in ``exclude_ports`` (ports some process already binds). Raises
        SessionExists, or CapacityError when ``max_sessions`` is reached or no port is
        free.
        """

    @abc.abstractmethod
    def get_session(self, name: str) -> Session:
        """Raises SessionNotFound."""

    @abc.abstractmethod
    def list_sessions(self, host: str | None = None) -> list[Session]:
        """Every session (of one host when ``host`` is given), ordered by name."""

    def update_session(
        self, name: str, changes: Mapping[str, Any], *, actor: str, action: str
    ) -> Session:
        """Change operator fields (config, desired state) and record the event."""
        _only(changes, OPERATOR_FIELDS | {"api_token_hash"})
        return self._update(name, checked_config(changes), actor, action)

    def set_runtime(self, name: str, changes: Mapping[str, Any], *, actor: str) -> Session:
        """Change runner-reported fields; a status change is recorded as an event."""
        _only(changes, RUNTIME_FIELDS)
        return self._update(name, changes, actor, None)

    @abc.abstractmethod
    def _update(
        self, name: str, changes: Mapping[str, Any], actor: str, action: str | None
    ) -> Session:
        """Apply ``changes`` (fields already checked) and record ``action`` as an event
        (None: a runtime change, recorded when the status changes)."""

    @abc.abstractmethod
    def delete_session(self, name: str, *, actor: str) -> None:
        """Remove the row (freeing its port); the audit trail keeps the deletion."""

    @abc.abstractmethod
    def add_event(
        self,
        session_name: str | None,
        action: str,
        *,
        actor: str,
        detail: Mapping[str, Any] | None = None,
        ts: datetime | None = None,
    ) -> None:
        """Record an action in the audit trail, at ``ts`` when given (an action taken
        while the store did not answer, written when it answers again), else now."""

    @abc.abstractmethod
    def list_events(self, session_name: str | None = None, limit: int = 100) -> list[Event]:
        """Newest first."""

    # -- webhook outbox (migration 0002) ------------------------------------------------

    def enqueue_webhook(self, event: WebhookEvent) -> None:
        """Insert an event into the outbox; an ``event_id`` already there is left as it
        is. Raises SessionNotFound when the session is gone."""
        raise StoreUnsupported(self.kind, NO_OUTBOX)

    def due_webhooks(
        self,
        session_name: str,
        now: datetime,
        limit: int = 50,
        *,
        lease: timedelta = DEFAULT_WEBHOOK_LEASE,
    ) -> list[WebhookEvent]:
        """Claim pending events whose ``next_attempt_at`` is not after ``now``, oldest due
        first: each one's ``next_attempt_at`` becomes ``now + lease`` (as returned), so
        callers racing for the same session (two processes, two hosts) never get the same
        event, and a claimer that dies mid-delivery leaves it due again when the lease
        ends. Recording the attempt sets the real next time."""
        raise StoreUnsupported(self.kind, NO_OUTBOX)

    def next_webhook_due(self, session_name: str) -> datetime | None:
        """When the earliest pending event is due (None when nothing is pending)."""
        raise StoreUnsupported(self.kind, NO_OUTBOX)

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
        """Store the outcome of one delivery attempt (``next_attempt_at`` only while
        pending; ``delivered_at`` becomes ``at`` when delivered)."""
        raise StoreUnsupported(self.kind, NO_OUTBOX)

    def list_webhooks(
        self, session_name: str, state: DeliveryState | None = None, limit: int = 100
    ) -> list[WebhookEvent]:
        """A session's outbox rows, newest first (one state only when given)."""
        raise StoreUnsupported(self.kind, NO_OUTBOX)

    def webhook_counts(self, session_name: str) -> dict[str, int]:
        """How many rows per state (`pending`, `delivered`, `dead`; 0 when none)."""
        raise StoreUnsupported(self.kind, NO_OUTBOX)

    def replay_webhooks(self, session_name: str, now: datetime) -> int:
        """Dead-lettered events back to pending, due ``now``, attempts reset; the count."""
        raise StoreUnsupported(self.kind, NO_OUTBOX)

    def prune_webhooks(self, session_name: str, delivered_before: datetime) -> int:
        """Delete delivered rows delivered before ``delivered_before``; the count."""
        raise StoreUnsupported(self.kind, NO_OUTBOX)

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
        """Insert rows copied from another store exactly as they are (`zapvisor db copy`):
        every field, the token hash and the timestamps kept; events and alerts in the
        order given (oldest first), with new ids; the sessions' webhook outbox rows and
        health records. An alert active here already (same host and key) is not copied.
        All or nothing: SessionExists, naming them, when any of the names is already
        here. Returns the number of sessions copied."""
        raise StoreUnsupported(self.kind, "cannot import rows")

    # -- live updates --------------------------------------------------------------

    def wait_for_change(self, timeout: float) -> bool:
        """Block until some session row may have changed, at most ``timeout`` seconds.

        Returns True when a change (insert, update, delete, by anyone: this process,
        another CLI, a runner, another host) happened since the previous call returned
        (the first call takes its baseline when it starts), False when ``timeout``
        passed without one. A TUI calls it in a loop from a worker thread and refreshes
        on True. Raises StoreError when the store cannot be reached.

        This default polls :meth:`change_marker` every ``poll_interval`` seconds (the
        sqlite and supabase stores); the postgres store is woken by LISTEN/NOTIFY.
        """
        deadline = time.monotonic() + timeout
        if self._change_baseline is None:
            self._change_baseline = self.change_marker()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(self.poll_interval, remaining))
            marker = self.change_marker()
            if marker != self._change_baseline:
                self._change_baseline = marker
                return True

    pushes_changes: bool = False
    """Whether :meth:`wait_for_change` is woken by the store itself (worth a watcher
    thread beside a TUI's refresh tick) rather than by polling like the tick does."""

    @property
    def live_updates(self) -> str:
        """How watchers learn of changes, for `zapvisor doctor`."""
        return f"live updates by polling every {self.poll_interval:g} s"

    cheap_change_marker: bool = False
    """Whether :meth:`change_marker` is one small query (then a reader may ask it before
    reading every row again); this default reads every row."""

    def change_marker(self) -> Hashable:
        """A value that differs whenever any session row changed (one cheap query)."""
        return tuple(
            (s.name, s.updated_at, s.status, s.desired_state) for s in self.list_sessions()
        )

    def close(self) -> None:
        """Release connections."""

    # -- health monitor (migration 0003) --------------------------------------------
    # Not abstract, so a store without them still serves every session operation (the
    # monitor then keeps them in memory: health/volatile.py); every store here has them.

    def get_health(self, name: str) -> SessionHealth:
        """The session's health record (an empty one when the monitor saved none).
        Raises SessionNotFound when the session does not exist."""
        raise StoreUnsupported(self.kind, NO_HEALTH)

    def list_health(self, host: str | None = None) -> dict[str, SessionHealth]:
        """Saved health records by session name (of one host's sessions when given)."""
        raise StoreUnsupported(self.kind, NO_HEALTH)

    def save_health(self, health: SessionHealth) -> None:
        """Insert or replace the record. Raises SessionNotFound when the session is gone."""
        raise StoreUnsupported(self.kind, NO_HEALTH)

    def raise_alert(self, alert: NewAlert) -> Alert | None:
        """Record the alert unless one with the same host and key is active; returns the
        new alert, or None when it was already active (deduplicated, also across
        concurrent callers)."""
        raise StoreUnsupported(self.kind, NO_ALERTS)

    def refresh_alert(self, host: str, key: str, message: str, value: float | None) -> bool:
        """Give the active alert ``key`` its current message and value (a count that
        grew): no new alert, no new notice. True when it changed."""
        raise StoreUnsupported(self.kind, NO_ALERTS)

    def clear_alert(self, host: str, key: str) -> Alert | None:
        """Clear the active alert with that key; returns it, or None when none was active."""
        raise StoreUnsupported(self.kind, NO_ALERTS)

    def list_alerts(
        self, host: str | None = None, *, active: bool | None = None, limit: int = 100
    ) -> list[Alert]:
        """Newest first; ``active`` True = only active ones, False = only cleared ones."""
        raise StoreUnsupported(self.kind, NO_ALERTS)

    def pending_alert_notices(self, host: str, since: datetime) -> list[Alert]:
        """Alerts raised (or cleared) at or after ``since`` whose raise (or clear) has not
        been delivered to the alert webhook yet, oldest first."""
        raise StoreUnsupported(self.kind, NO_ALERTS)

    def count_dead_letters(self, host: str) -> int:
        """Webhook events of ``host``'s sessions that exhausted every retry and are
        still unhandled. The health monitor raises the `webhook_dead_letters` alert
        while this is above 0."""
        raise StoreUnsupported(self.kind, NO_OUTBOX)

    def mark_alert_sent(self, alert_id: int, phase: str, at: datetime) -> None:
        """Record that the ``phase`` ('raised' or 'cleared') notice was delivered."""
        raise StoreUnsupported(self.kind, NO_ALERTS)

    # -- fleet hosts (migration 0005) ---------------------------------------------------
    # Not abstract, like the health records: a store without them still serves every
    # session operation; every store here has them.

    def list_hosts(self) -> list[HostRecord]:
        """Every host of the fleet, ordered by name."""
        raise StoreUnsupported(self.kind, NO_HOSTS)

    def get_host(self, name: str) -> HostRecord:
        """Raises HostNotFound."""
        raise StoreUnsupported(self.kind, NO_HOSTS)

    def add_host(
        self, new: NewHost, *, actor: str, detail: Mapping[str, Any] | None = None
    ) -> HostRecord:
        """Record a host and the action (`host_add`, with ``detail``) in the audit trail.
        Raises HostExists when the name is taken."""
        raise StoreUnsupported(self.kind, NO_HOSTS)

    def update_host(
        self,
        name: str,
        changes: Mapping[str, Any],
        *,
        actor: str = "",
        action: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> HostRecord:
        """Change fields of :data:`~ecosystem.fleet.records.HOST_CHANGES`; with an
        ``action``, record it. Raises HostNotFound."""
        raise StoreUnsupported(self.kind, NO_HOSTS)

    def remove_host(
        self, name: str, *, actor: str, detail: Mapping[str, Any] | None = None
    ) -> None:
        """Remove a host that holds no session (atomically with session creation on it)
        and record `host_remove`. Raises HostNotFound, or HostBusy naming its sessions."""
        raise StoreUnsupported(self.kind, NO_HOSTS)


def audit_detail(changes: Mapping[str, Any]) -> dict[str, Any]:
    """What an event records of a change: field names, and short values that hold no
    secrets (the token hash is never copied into the audit trail)."""
    out: dict[str, Any] = {}
    for key, value in changes.items():
        if key == "api_token_hash":
            out[key] = "rotated"
        elif key == "webhook_url":
            out[key] = redact_url(value)
        elif isinstance(value, str | int | float | bool) or value is None:
            out[key] = str(value) if hasattr(value, "value") else value
        else:
            out[key] = "changed"
    return out


def checked_config(changes: Mapping[str, Any]) -> Mapping[str, Any]:
    """``changes`` with ai_config and timing_config checked (whoever writes them, a
    runner never meets a config it cannot read); InvalidValue names the field."""
    if not {"ai_config", "timing_config"} & changes.keys():
        return changes  # most writes: without importing the checks (pydantic)
    from ecosystem.botconfig import check_ai_config, check_timing_config

    checks = {"ai_config": check_ai_config, "timing_config": check_timing_config}
    out = dict(changes)
    for key, check in checks.items():
        if key in out:
            try:
                out[key] = check(out[key])
            except ValueError as exc:
                raise InvalidValue(str(exc)) from None
    return out


def _only(changes: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"cannot change {', '.join(sorted(unknown))} here")
