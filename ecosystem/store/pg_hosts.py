"""The fleet hosts of the postgres and supabase stores (migrations/postgres/0005): each
method is one call of a SQL function, the same for both stores. Times come from this
process's clock, as on the sqlite store."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ecosystem.fleet.records import HOST_CHANGES, HostRecord, NewHost, host_not_found
from ecosystem.session import utcnow
from ecosystem.store.pgfunctions import FunctionCaller, in_utc, ms
from ecosystem.store.sqlite_hosts import host_from_row


def _row(row: Mapping[str, Any]) -> HostRecord:
    return in_utc(host_from_row(row))


def _json(value: Any) -> Any:
    return ms(value) if isinstance(value, datetime) else value


class PgHosts(FunctionCaller):
    def list_hosts(self) -> list[HostRecord]:
        rows = self.call_function("zapvisor_list_hosts", {}, returns="rows", write=False)
        return [_row(r) for r in rows]

    def get_host(self, name: str) -> HostRecord:
        rows = self.call_function(
            "zapvisor_get_host", {"p_name": name}, returns="rows", write=False, host=name
        )
        if not rows:
            raise host_not_found(name)
        return _row(rows[0])

    def add_host(
        self, new: NewHost, *, actor: str, detail: Mapping[str, Any] | None = None
    ) -> HostRecord:
        row = new.model_dump(exclude={"name"})
        row["host_id"] = new.name
        row["created_at"] = ms(utcnow())
        rows = self.call_function(
            "zapvisor_add_host",
            {"p_host": row, "p_actor": actor, "p_detail": dict(detail or {})},
            returns="rows",
            write=True,
            host=new.name,
        )
        return _row(rows[0])

    def update_host(
        self,
        name: str,
        changes: Mapping[str, Any],
        *,
        actor: str = "",
        action: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> HostRecord:
        unknown = set(changes) - HOST_CHANGES
        if unknown:
            raise ValueError(f"cannot change {', '.join(sorted(unknown))} of a host")
        rows = self.call_function(
            "zapvisor_update_host",
            {
                "p_name": name,
                "p_changes": {k: _json(v) for k, v in changes.items()},
                "p_actor": actor,
                "p_action": action,
                "p_detail": dict(detail or {}) if action is not None else None,
            },
            returns="rows",
            write=True,
            host=name,
        )
        return _row(rows[0])

    def remove_host(
        self, name: str, *, actor: str, detail: Mapping[str, Any] | None = None
    ) -> None:
        self.call_function(
            "zapvisor_remove_host",
            {"p_name": name, "p_actor": actor, "p_detail": dict(detail or {})},
            returns="nothing",
            write=True,
            host=name,
        )
