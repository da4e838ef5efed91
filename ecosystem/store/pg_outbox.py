"""The webhook outbox of the postgres and supabase stores (migrations/postgres/0002): each
method is one call of a SQL function, the same for both stores."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from ecosystem.store.base import DEFAULT_WEBHOOK_LEASE
from ecosystem.store.pgfunctions import FunctionCaller, in_utc, ms, parse_time
from ecosystem.webhook_events import DeliveryState, WebhookEvent


def event_to_json(event: WebhookEvent) -> dict[str, Any]:
    """An outbox row as the functions take it (times cut to milliseconds)."""
    data = event.model_dump(mode="json")
    for key in ("created_at", "next_attempt_at", "last_attempt_at", "delivered_at"):
        data[key] = ms(getattr(event, key))
    return data


def event_from_row(row: Mapping[str, Any]) -> WebhookEvent:
    return in_utc(WebhookEvent.model_validate(dict(row)))


class PgOutbox(FunctionCaller):
    def enqueue_webhook(self, event: WebhookEvent) -> None:
        self.call_function(
            "zapvisor_enqueue_webhook",
            {"p_event": event_to_json(event)},
            returns="nothing",
            write=True,
            name=event.session_name,
        )

    def due_webhooks(
        self,
        session_name: str,
        now: datetime,
        limit: int = 50,
        *,
        lease: timedelta = DEFAULT_WEBHOOK_LEASE,
    ) -> list[WebhookEvent]:
        rows = self.call_function(
            "zapvisor_claim_webhooks",
            {
                "p_session": session_name,
                "p_now": ms(now),
                "p_limit": limit,
                "p_lease_until": ms(now + lease),
            },
            returns="rows",
            write=True,
        )
        return [event_from_row(r) for r in rows]

    def next_webhook_due(self, session_name: str) -> datetime | None:
        value = self.call_function(
            "zapvisor_next_webhook_due", {"p_session": session_name}, returns="value", write=False
        )
        return parse_time(value)

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
        self.call_function(
            "zapvisor_record_webhook_attempt",
            {
                "p_event_id": event_id,
                "p_state": str(state),
                "p_attempts": attempts,
                "p_at": ms(at),
                "p_next_attempt_at": ms(next_attempt_at),
                "p_status": status,
                "p_error": error,
            },
            returns="nothing",
            write=True,
        )

    def list_webhooks(
        self, session_name: str, state: DeliveryState | None = None, limit: int = 100
    ) -> list[WebhookEvent]:
        rows = self.call_function(
            "zapvisor_list_webhooks",
            {
                "p_session": session_name,
                "p_state": None if state is None else str(state),
                "p_limit": limit,
            },
            returns="rows",
            write=False,
        )
        return [event_from_row(r) for r in rows]

    def webhook_counts(self, session_name: str) -> dict[str, int]:
        counts = {str(s): 0 for s in DeliveryState}
        rows = self.call_function(
            "zapvisor_webhook_counts", {"p_session": session_name}, returns="rows", write=False
        )
        for row in rows:
            counts[str(row["state"])] = int(row["count"])
        return counts

    def replay_webhooks(self, session_name: str, now: datetime) -> int:
        return int(
            self.call_function(
                "zapvisor_replay_webhooks",
                {"p_session": session_name, "p_now": ms(now)},
                returns="value",
                write=True,
            )
        )

    def prune_webhooks(self, session_name: str, delivered_before: datetime) -> int:
        return int(
            self.call_function(
                "zapvisor_prune_webhooks",
                {"p_session": session_name, "p_before": ms(delivered_before)},
                returns="value",
                write=True,
            )
        )

    def count_dead_letters(self, host: str) -> int:
        return int(
            self.call_function(
                "zapvisor_count_dead_letters", {"p_host": host}, returns="value", write=False
            )
        )
