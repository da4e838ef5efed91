"""Health records and alerts kept in the monitor's memory, for a store that cannot keep
them (the health methods of ``Store`` are not abstract; every store zapvisor ships has
them, but a PostgreSQL database whose schema predates migration 0003 cannot). The
monitor still restarts, backs off and parks, but what it knows is lost when it
restarts, and `show`/`alerts` do not see it."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any, cast

from ecosystem.errors import SchemaMissing, StoreError, StoreUnsupported
from ecosystem.health.model import Alert, NewAlert, SessionHealth
from ecosystem.session import utcnow
from ecosystem.store.base import Store


def health_gap(store: Store) -> str | None:
    """Why ``store`` cannot keep the monitor's records, or None when it can: a store
    without the health methods, or a database whose schema predates them (migration
    0003 not applied yet)."""
    try:
        store.list_health()
        store.list_alerts(limit=1)
    except StoreUnsupported as exc:
        return str(exc)
    except SchemaMissing as exc:
        return str(exc)
    return None


def keeps_health(store: Store) -> bool:
    try:
        return health_gap(store) is None
    except StoreError:
        return False  # down: asked again at the next check


class _Volatile:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._health: dict[tuple[str, datetime], SessionHealth] = {}
        self._alerts: list[Alert] = []
        self._ids = itertools.count(1)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    # records are keyed by name and creation time: a new session with an old name
    # starts clean, as the tables' ON DELETE CASCADE makes it elsewhere

    def get_health(self, name: str) -> SessionHealth:
        born = self._store.get_session(name).created_at
        return self._health.get((name, born)) or SessionHealth(name=name)

    def list_health(self, host: str | None = None) -> dict[str, SessionHealth]:
        alive = {(s.name, s.created_at) for s in self._store.list_sessions(host)}
        return {k[0]: v for k, v in self._health.items() if k in alive}

    def save_health(self, health: SessionHealth) -> None:
        born = self._store.get_session(health.name).created_at  # SessionNotFound when gone
        self._health[(health.name, born)] = health

    def raise_alert(self, alert: NewAlert) -> Alert | None:
        if any(a.active and (a.host, a.key) == (alert.host, alert.key) for a in self._alerts):
            return None
        new = Alert(id=next(self._ids), raised_at=utcnow(), **alert.model_dump())
        self._alerts.append(new)
        return new

    def refresh_alert(self, host: str, key: str, message: str, value: float | None) -> bool:
        for i, a in enumerate(self._alerts):
            if (
                a.active
                and (a.host, a.key) == (host, key)
                and (a.message, a.value)
                != (
                    message,
                    value,
                )
            ):
                self._alerts[i] = a.model_copy(update={"message": message, "value": value})
                return True
        return False

    def clear_alert(self, host: str, key: str) -> Alert | None:
        for i, a in enumerate(self._alerts):
            if a.active and (a.host, a.key) == (host, key):
                self._alerts[i] = a.model_copy(update={"cleared_at": utcnow()})
                return self._alerts[i]
        return None

    def list_alerts(
        self, host: str | None = None, *, active: bool | None = None, limit: int = 100
    ) -> list[Alert]:
        found = [
            a
            for a in reversed(self._alerts)
            if (host is None or a.host == host) and (active is None or a.active == active)
        ]
        return found[:limit]

    def pending_alert_notices(self, host: str, since: datetime) -> list[Alert]:
        return [
            a
            for a in self._alerts
            if a.host == host
            and (
                (a.raise_sent_at is None and a.raised_at >= since)
                or (a.cleared_at is not None and a.clear_sent_at is None and a.cleared_at >= since)
            )
        ]

    def mark_alert_sent(self, alert_id: int, phase: str, at: datetime) -> None:
        column = {"raised": "raise_sent_at", "cleared": "clear_sent_at"}.get(phase)
        if column is None:
            raise ValueError(f"phase must be 'raised' or 'cleared', got {phase!r}")
        for i, a in enumerate(self._alerts):
            if a.id == alert_id:
                self._alerts[i] = a.model_copy(update={column: at})


def volatile(store: Store) -> Store:
    """``store`` with the health methods answered from memory."""
    return cast(Store, _Volatile(store))
