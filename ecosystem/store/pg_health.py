"""Health records and alerts of the postgres and supabase stores
(migrations/postgres/0003): each method is one call of a SQL function, the same for
both stores. Times come from this process's clock, as on the sqlite store."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ecosystem.health.model import Alert, NewAlert, SessionHealth
from ecosystem.session import utcnow
from ecosystem.store.pgfunctions import FunctionCaller, in_utc, ms

_HEALTH_TIMES = ("last_exit_at", "last_restart_at", "next_restart_at", "parked_at")
PHASES = ("raised", "cleared")


def health_to_json(health: SessionHealth, updated_at: datetime) -> dict[str, Any]:
    """A session_health row as the functions take it."""
    data = health.model_dump(mode="json")
    data["session_name"] = data.pop("name")
    data["recent_exits"] = [ms(t) for t in health.recent_exits]
    for key in _HEALTH_TIMES:
        data[key] = ms(getattr(health, key))
    data["updated_at"] = ms(updated_at)
    return data


def health_from_row(row: Mapping[str, Any]) -> SessionHealth:
    data = dict(row)
    data["name"] = data.pop("session_name")
    data["recent_exits"] = data.get("recent_exits") or []
    return in_utc(SessionHealth.model_validate(data))


def alert_from_row(row: Mapping[str, Any]) -> Alert:
    return in_utc(Alert.model_validate(dict(row)))


def alert_to_json(alert: Alert) -> dict[str, Any]:
    """An alerts row for `zapvisor db copy` (its id is the target's to give)."""
    data = alert.model_dump(mode="json", exclude={"id"})
    for key in ("raised_at", "cleared_at", "raise_sent_at", "clear_sent_at"):
        data[key] = ms(getattr(alert, key))
    return data


def check_phase(phase: str) -> None:
    if phase not in PHASES:
        raise ValueError(f"phase must be 'raised' or 'cleared', got {phase!r}")


class PgHealth(FunctionCaller):
    def get_health(self, name: str) -> SessionHealth:
        rows = self.call_function(
            "zapvisor_get_health", {"p_name": name}, returns="rows", write=False, name=name
        )
        return health_from_row(rows[0]) if rows else SessionHealth(name=name)

    def list_health(self, host: str | None = None) -> dict[str, SessionHealth]:
        rows = self.call_function(
            "zapvisor_list_health", {"p_host": host}, returns="rows", write=False
        )
        return {h.name: h for h in map(health_from_row, rows)}

    def save_health(self, health: SessionHealth) -> None:
        self.call_function(
            "zapvisor_save_health",
            {"p_health": health_to_json(health, utcnow())},
            returns="nothing",
            write=True,
            name=health.name,
        )

    def raise_alert(self, alert: NewAlert) -> Alert | None:
        rows = self.call_function(
            "zapvisor_raise_alert",
            {"p_alert": alert.model_dump(mode="json"), "p_at": ms(utcnow())},
            returns="rows",
            write=True,
        )
        return alert_from_row(rows[0]) if rows else None

    def refresh_alert(self, host: str, key: str, message: str, value: float | None) -> bool:
        rows = self.call_function(
            "zapvisor_refresh_alert",
            {"p_host": host, "p_key": key, "p_message": message, "p_value": value},
            returns="rows",
            write=True,
        )
        return bool(rows)

    def clear_alert(self, host: str, key: str) -> Alert | None:
        rows = self.call_function(
            "zapvisor_clear_alert",
            {"p_host": host, "p_key": key, "p_at": ms(utcnow())},
            returns="rows",
            write=True,
        )
        return alert_from_row(rows[0]) if rows else None

    def list_alerts(
        self, host: str | None = None, *, active: bool | None = None, limit: int = 100
    ) -> list[Alert]:
        rows = self.call_function(
            "zapvisor_list_alerts",
            {"p_host": host, "p_active": active, "p_limit": limit},
            returns="rows",
            write=False,
        )
        return [alert_from_row(r) for r in rows]

    def pending_alert_notices(self, host: str, since: datetime) -> list[Alert]:
        rows = self.call_function(
            "zapvisor_pending_alert_notices",
            {"p_host": host, "p_since": ms(since)},
            returns="rows",
            write=False,
        )
        return [alert_from_row(r) for r in rows]

    def mark_alert_sent(self, alert_id: int, phase: str, at: datetime) -> None:
        check_phase(phase)
        self.call_function(
            "zapvisor_mark_alert_sent",
            {"p_id": alert_id, "p_phase": phase, "p_at": ms(at)},
            returns="nothing",
            write=True,
        )
