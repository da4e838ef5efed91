"""Session updates of the postgres and supabase stores: one call of
`zapvisor_update_session` (migrations/postgres/0001), the same for both stores."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ecosystem.session import Session
from ecosystem.store import pgcommon as pg
from ecosystem.store.base import audit_detail
from ecosystem.store.pgfunctions import FunctionCaller


class PgSessions(FunctionCaller):
    def _update(
        self, name: str, changes: Mapping[str, Any], actor: str, action: str | None
    ) -> Session:
        probe = Session.model_validate({"name": name, "host": "-", "port": 1, **changes})
        values = pg.changes_json({k: getattr(probe, k) for k in changes})
        if "api_token_hash" in changes:
            values["api_token_hash"] = changes["api_token_hash"]
        rows = self.call_function(
            "zapvisor_update_session",
            {
                "p_name": name,
                "p_changes": values,
                "p_actor": actor,
                "p_action": action,
                "p_detail": audit_detail(changes) if action is not None else None,
            },
            returns="rows",
            write=True,
            name=name,
        )
        return pg.session_from_row(rows[0])
