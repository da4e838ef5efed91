"""Reaching one session: its row, API token, pairing by phone number, pairing QR,
webhook outbox, log and audit trail (`zapvisor token`, `pair`, `qr`, `webhooks`, `logs`,
`events` and the terminal app)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ecosystem import apitoken, logfiles, shared_secrets, webhook_events
from ecosystem.errors import (
    InvalidValue,
    RunnerError,
    SchemaMissing,
    StoreUnsupported,
    ZapvisorError,
)
from ecosystem.fleet.routing import routed
from ecosystem.lease import AuthKind
from ecosystem.lifecycle import Lifecycle
from ecosystem.names import validate_name
from ecosystem.pairing import (
    PairingCode,
    no_qr_reason,
    pairing_problem,
    phone_digits,
    phone_problem,
)
from ecosystem.session import Event, Session, utcnow
from ecosystem.states import Status
from ecosystem.webhook_events import DeliveryState, WebhookEvent

LOG_POLL = 0.25
"""Seconds between two looks at a followed log (an empty batch marks each look)."""


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


@dataclass(frozen=True)
class QrCode:
    """A session's pairing QR as the store holds it (no payload once it is linked)."""

    name: str
    status: Status
    phone: str | None
    payload: str | None
    expires_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": str(self.status),
            "phone": self.phone,
            "qr_payload": self.payload,
            "qr_expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }


@dataclass(frozen=True)
class LogLine:
    text: str
    stderr: bool = False


@dataclass(frozen=True)
class LogTail:
    lines: list[LogLine]
    missing: list[str]
    """The log files that do not exist yet (paths on the session's host)."""


class SessionAccess(Lifecycle):
    def session(self, name: str) -> Session:
        """The store's row of one session (SessionNotFound when there is none)."""
        return self.store.get_session(validate_name(name))

    def events(self, name: str | None = None, limit: int = 30) -> list[Event]:
        """The audit trail, newest first: one session's (a deleted one's too), or
        everyone's. A name that never had a session nor an event is SessionNotFound."""
        found = self.store.list_events(validate_name(name) if name else None, limit=limit)
        if name and not found:
            self.store.get_session(name)  # SessionNotFound, as every other command says
        return found

    @routed
    def api_token(self, name: str, *, rotate: bool = False) -> str:
        """The session's API token; with ``rotate`` a new one replaces it (the runner
        accepts the new one within seconds, the old one stops working)."""
        self.session(name)
        if not rotate:
            return apitoken.read_token(self.paths, name)
        token = apitoken.new_token()
        self.store.update_session(
            name, {"api_token_hash": apitoken.hash_token(token)}, actor=self.actor, action="token"
        )
        apitoken.save_token(self.paths, name, token)
        return token

    @routed
    def pair_phone(self, name: str, phone: str) -> PairingCode:
        """A pairing code for ``phone`` (typed on the phone instead of scanning the QR)."""
        problem = phone_problem(phone)
        if problem:
            raise InvalidValue(f"phone number {problem}")
        view = self.show(name)
        problem = pairing_problem(view)
        if problem:
            raise RunnerError(problem)
        body = {"phone": phone_digits(phone)}
        answer = self._runner_call(view.session, "POST", "/pair-phone", body, timeout=30)
        if not isinstance(answer, dict) or "code" not in answer:
            raise RunnerError(f"{name}: the runner answered no pairing code ({answer!r:.80})")
        expires = answer.get("expiresAt")
        return PairingCode(
            name=name,
            phone=str(answer.get("phone") or phone_digits(phone)),
            code=str(answer["code"]),
            expires_at=datetime.fromisoformat(expires) if isinstance(expires, str) else None,
        )

    @routed
    def qr(self, name: str, *, wait: float = 0.0) -> QrCode:
        """The session's pairing QR (or, once linked, its phone); with ``wait``, give
        the runner that many seconds to show one. RunnerError says why there is none."""
        deadline = time.monotonic() + wait
        said = ""
        while True:
            session = self.session(name)
            if session.qr_payload or session.status == Status.CONNECTED:
                return QrCode(
                    session.name,
                    session.status,
                    session.phone,
                    session.qr_payload,
                    session.qr_expires_at if session.qr_payload else None,
                )
            if time.monotonic() >= deadline:
                waited = f" after {wait:g} s" if wait else ""
                state = self.show(name).process_state
                raise RunnerError(f"{name} has no QR code{waited}: {no_qr_reason(session, state)}")
            if session.status != said:
                said = session.status
                self.progress(f"waiting for {name}'s QR code (status {session.status})")
            time.sleep(0.2)

    @routed
    def webhook_secret(self, name: str, *, rotate: bool = False) -> str:
        """The secret webhook signatures are made with; the runner picks a rotated one
        up at its next delivery."""
        session = self.session(name)
        shared = session.auth == AuthKind.STORE
        if rotate:
            secret = webhook_events.new_secret()
            webhook_events.save_secret(self.paths, name, secret)
            if shared:  # it moves with the session
                shared_secrets.share(self.store, name, secret)
            self.store.add_event(name, "webhook_secret", actor=self.actor)
            return secret
        if shared:
            with contextlib.suppress(StoreUnsupported, SchemaMissing):
                return shared_secrets.shared_secret(self.store, self.paths, name)
        return webhook_events.ensure_secret(self.paths, name)

    def webhook_counts(self, name: str) -> dict[str, int] | None:
        """Deliveries of the session's webhook events by state (`pending`, `delivered`,
        `dead`): one store query; None when the store keeps no webhook outbox."""
        try:
            return self.store.webhook_counts(validate_name(name))
        except StoreUnsupported:
            return None

    @routed
    def webhook_report(
        self,
        name: str,
        *,
        state: DeliveryState | None = None,
        limit: int = 20,
        replay: bool = False,
    ) -> WebhookReport:
        """The outbox of a session; with ``replay`` its dead-lettered events are due
        again (delivered now when the runner runs, else at its next start)."""
        session = self.session(name)
        replayed = 0
        if replay:
            replayed = self.store.replay_webhooks(name, utcnow())
            if replayed:
                self.store.add_event(
                    name, "webhook_replay", actor=self.actor, detail={"n": replayed}
                )
                with contextlib.suppress(ZapvisorError, OSError):  # it also looks every 10 minutes
                    self._runner_call(session, "POST", "/webhook/flush", timeout=30)
        return WebhookReport(
            name=name,
            url=session.webhook_url,
            events=session.webhook_events or list(webhook_events.EVENTS),
            counts=self.store.webhook_counts(name),
            rows=self.store.list_webhooks(name, state, limit),
            replayed=replayed,
        )

    @routed
    def logs(
        self, name: str, *, lines: int = 50, stdout: bool = True, stderr: bool = False
    ) -> LogTail:
        """The last ``lines`` lines of the runner's log (stdout, stderr or both)."""
        paths = self._log_paths(name, stdout=stdout, stderr=stderr)
        found = [LogLine(text, err) for err, path in paths for text in logfiles.tail(path, lines)]
        return LogTail(found, [str(path) for _err, path in paths if not path.exists()])

    @routed
    def follow_logs(
        self,
        name: str,
        *,
        backlog: int = 0,
        stdout: bool = True,
        stderr: bool = False,
        poll: float = LOG_POLL,
    ) -> Generator[list[LogLine], None, None]:
        """The last ``backlog`` lines as a first batch, then the lines appended since,
        a batch at every look (empty when nothing was written, so a caller can stop
        between two): never ends by itself."""
        paths = self._log_paths(name, stdout=stdout, stderr=stderr)
        stderr_of = {path: err for err, path in paths}
        follower = logfiles.Follower([p for _e, p in paths])  # first: no line falls between
        first = [
            LogLine(text, err)
            for err, path in paths
            for text in logfiles.tail(path, backlog // 10 if err and stdout else backlog)
        ]
        yield first
        while True:
            found = follower.read()
            yield [LogLine(text, stderr_of[path]) for path, text in found]
            if not found:
                time.sleep(poll)

    def _log_paths(self, name: str, *, stdout: bool, stderr: bool) -> list[tuple[bool, Path]]:
        session = self.session(name)
        out: list[tuple[bool, Path]] = []
        if stdout:
            out.append((False, self.paths.stdout_log(session.name)))
        if stderr:
            out.append((True, self.paths.stderr_log(session.name)))
        return out
