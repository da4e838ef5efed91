"""A session's API token, its pairing by phone number and its webhook outbox: the core
calls behind `zapvisor token`, `zapvisor pair` and `zapvisor webhooks` (and the TUI)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ecosystem import apitoken, runner_client
from ecosystem import webhooks as wh
from ecosystem.errors import InvalidValue, OutboxUnavailable, RunnerError, ZapvisorError
from ecosystem.models import utcnow
from ecosystem.names import validate_name
from ecosystem.orchestrator import Orchestrator
from ecosystem.pairing import PairingCode, pairing_problem, phone_digits, phone_problem
from ecosystem.webhooks import DeliveryState, WebhookEvent


def _call(orch: Orchestrator, name: str, method: str, path: str, body: Any = None) -> Any:
    session = orch.store.get_session(name)
    token = apitoken.read_token(orch.paths, name)
    status, answer = runner_client.call(
        orch.settings.bind, session.port, path, method=method, token=token, body=body, timeout=30
    )
    if status >= 400:
        raise runner_client.refusal(name, status, answer)
    return answer


def api_token(orch: Orchestrator, name: str, *, rotate: bool = False) -> str:
    """The session's API token; with ``rotate`` a new one replaces it (the runner
    accepts the new one within seconds, the old one stops working)."""
    orch.store.get_session(validate_name(name))
    if not rotate:
        return apitoken.read_token(orch.paths, name)
    token = apitoken.new_token()
    orch.store.update_session(
        name, {"api_token_hash": apitoken.hash_token(token)}, actor=orch.actor, action="token"
    )
    apitoken.save_token(orch.paths, name, token)
    return token


def pair_phone(orch: Orchestrator, name: str, phone: str) -> PairingCode:
    """A pairing code for ``phone`` (typed on the phone instead of scanning the QR)."""
    problem = phone_problem(phone)
    if problem:
        raise InvalidValue(f"phone number {problem}")
    problem = pairing_problem(orch.show(name))
    if problem:
        raise RunnerError(problem)
    answer = _call(orch, name, "POST", "/pair-phone", {"phone": phone_digits(phone)})
    expires = answer.get("expiresAt") if isinstance(answer, dict) else None
    return PairingCode(
        name=name,
        phone=str(answer.get("phone") or phone_digits(phone)),
        code=str(answer["code"]),
        expires_at=datetime.fromisoformat(expires) if isinstance(expires, str) else None,
    )


def webhook_secret(orch: Orchestrator, name: str, *, rotate: bool = False) -> str:
    """The secret webhook signatures are made with; the runner picks a rotated one up
    at its next delivery."""
    orch.store.get_session(validate_name(name))
    if rotate:
        secret = wh.new_secret()
        wh.save_secret(orch.paths, name, secret)
        orch.store.add_event(name, "webhook_secret", actor=orch.actor)
        return secret
    return wh.ensure_secret(orch.paths, name)


def webhook_counts(orch: Orchestrator, name: str) -> dict[str, int] | None:
    """Deliveries of the session's webhook events by state (`pending`, `delivered`,
    `dead`): one store query; None when the store keeps no webhook outbox."""
    try:
        return orch.store.webhook_counts(validate_name(name))
    except OutboxUnavailable:
        return None


@dataclass
class WebhookReport:
    name: str
    url: str | None
    events: list[str]
    counts: dict[str, int]
    rows: list[WebhookEvent] = field(default_factory=list)
    replayed: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "webhook_url": self.url,
            "events": self.events,
            "counts": self.counts,
            "replayed": self.replayed,
            "deliveries": [
                r.model_dump(mode="json", exclude={"payload", "session_name"}) for r in self.rows
            ],
        }


def webhook_report(
    orch: Orchestrator,
    name: str,
    *,
    state: DeliveryState | None = None,
    limit: int = 20,
    replay: bool = False,
) -> WebhookReport:
    """The outbox of a session; with ``replay`` its dead-lettered events are due again
    (delivered now when the runner runs, else at its next start)."""
    session = orch.store.get_session(validate_name(name))
    replayed = 0
    if replay:
        replayed = orch.store.replay_webhooks(name, utcnow())
        if replayed:
            orch.store.add_event(name, "webhook_replay", actor=orch.actor, detail={"n": replayed})
            with contextlib.suppress(ZapvisorError, OSError):  # it also looks every minute
                _call(orch, name, "POST", "/webhook/flush")
    return WebhookReport(
        name=name,
        url=session.webhook_url,
        events=session.webhook_events or list(wh.EVENTS),
        counts=orch.store.webhook_counts(name),
        rows=orch.store.list_webhooks(name, state, limit),
        replayed=replayed,
    )
