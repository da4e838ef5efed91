"""Delivering alerts to ZAPVISOR_ALERT_WEBHOOK_URL: one POST when an alert is raised and
one when it clears, retried until delivered (or too old), on a thread of its own so a
slow receiver never delays a health check.

What is still to deliver is read from the store (``pending_alert_notices``), so a
monitor that is killed and restarted delivers what the previous one had not.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ecosystem.backoff import scheduled
from ecosystem.errors import ZapvisorError
from ecosystem.health.model import Alert
from ecosystem.store import Store

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("health.notify")

TIMEOUT = 5.0
MAX_AGE = timedelta(hours=1)
"""Notices older than this are not sent any more (a URL set later sends no history)."""
RETRY_DELAYS = (0.0, 5.0, 30.0, 300.0)
"""Seconds to wait before each new attempt at one notice (the last one repeats)."""


def payload(alert: Alert, phase: str) -> dict[str, object]:
    return {"event": f"alert.{phase}", "alert": alert.to_json()}


class NotDelivered(Exception):
    """The receiver did not take a notice (it is tried again later)."""


class Poster:
    """POSTs notices over one pooled httpx client, made on the first notice (a host
    without ZAPVISOR_ALERT_WEBHOOK_URL never loads httpx)."""

    def __init__(self, timeout: float = TIMEOUT) -> None:
        self.timeout = timeout
        self._client: httpx.Client | None = None

    def __call__(self, url: str, body: dict[str, object]) -> None:
        import httpx

        if self._client is None:
            self._client = httpx.Client(
                timeout=self.timeout,
                trust_env=False,
                headers={"User-Agent": "zapvisor-health"},
            )
        try:
            response = self._client.post(url, json=body)
        except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as exc:
            raise NotDelivered(str(exc) or type(exc).__name__) from None
        if not response.is_success:
            raise NotDelivered(f"HTTP {response.status_code}")


class Notifier:
    """Sends pending notices whenever woken (each health check wakes it)."""

    def __init__(
        self,
        store: Store,
        host: str,
        url: Callable[[], str | None],
        clock: Callable[[], datetime],
        send: Callable[[str, dict[str, object]], None] | None = None,
    ) -> None:
        self.store = store
        self.host = host
        self.url = url
        self.clock = clock
        self.send = send or Poster()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._attempts: dict[tuple[int, str], tuple[int, datetime]] = {}
        self._thread = threading.Thread(target=self._run, name="notify", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            try:
                self.deliver_pending()
            except ZapvisorError as exc:
                log.warning("cannot read pending alert notices: %s", exc)

    def deliver_pending(self) -> int:
        """Send every notice that is due; returns how many were delivered."""
        url = self.url()
        if not url:
            return 0
        now = self.clock()
        sent = 0
        for alert in self.store.pending_alert_notices(self.host, now - MAX_AGE):
            phases = []
            if alert.raise_sent_at is None:
                phases.append("raised")
            if alert.cleared_at is not None and alert.clear_sent_at is None:
                phases.append("cleared")
            for phase in phases:
                if not self._due(alert.id, phase, now):
                    break
                try:
                    self.send(url, payload(alert, phase))
                except NotDelivered as exc:
                    self._failed(alert.id, phase, now)
                    log.warning(
                        "alert %s %s not delivered: %s",
                        alert.key,
                        phase,
                        exc,
                        extra={"alert": alert.key},
                    )
                    break  # keep the order: a clear never arrives before its raise
                self.store.mark_alert_sent(alert.id, phase, self.clock())
                self._attempts.pop((alert.id, phase), None)
                sent += 1
        return sent

    def _due(self, alert_id: int, phase: str, now: datetime) -> bool:
        tries = self._attempts.get((alert_id, phase))
        return tries is None or now >= tries[1]

    def _failed(self, alert_id: int, phase: str, now: datetime) -> None:
        count = self._attempts.get((alert_id, phase), (0, now))[0] + 1
        delay = scheduled(RETRY_DELAYS, count)
        self._attempts[(alert_id, phase)] = (count, now + timedelta(seconds=delay))
