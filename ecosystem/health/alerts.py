"""Which alerts hold now: host thresholds (RAM, sustained CPU, disk), sessions in
error, FATAL runners and webhook dead-letters. Pure rules over samples and the time;
the monitor turns their difference with the active alerts into raises and clears."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ecosystem.errors import SchemaMissing, StoreUnsupported
from ecosystem.health.model import (
    BOT_KEY,
    Alert,
    AlertKind,
    NewAlert,
    SessionHealth,
    Severity,
)
from ecosystem.metrics import HostStats
from ecosystem.names import program_name
from ecosystem.session import Session
from ecosystem.settings import Settings
from ecosystem.states import DesiredState, ProcessState, Status
from ecosystem.store.base import Store
from ecosystem.supctl.rpc import ProcessInfo

log = logging.getLogger("health")

HYSTERESIS = 5.0
"""Percentage points a host metric must fall below its threshold before its alert
clears, so a value hovering at the threshold does not raise and clear every tick."""


@dataclass(frozen=True)
class Thresholds:
    ram_percent: float = 85.0
    cpu_percent: float = 80.0
    cpu_seconds: float = 300.0
    disk_percent: float = 85.0
    startup_grace: float = 10.0
    """Seconds a runner must have run before it counts as settled (up, not restarting)."""

    @classmethod
    def from_settings(cls, s: Settings) -> Thresholds:
        return cls(
            s.alert_ram_percent, s.alert_cpu_percent, s.alert_cpu_seconds, s.alert_disk_percent
        )


class CpuTracker:
    """Since when the CPU has been above its threshold without a break."""

    def __init__(self) -> None:
        self.above_since: datetime | None = None

    def update(self, above: bool, now: datetime) -> float:
        """Seconds the CPU has been above; 0 when it is not."""
        if not above:
            self.above_since = None
            return 0.0
        if self.above_since is None:
            self.above_since = now
        return (now - self.above_since).total_seconds()


def _over(value: float, threshold: float, active: bool) -> bool:
    return value > (threshold - HYSTERESIS if active else threshold)


def host_alerts(
    host: str,
    th: Thresholds,
    sample: HostStats,
    cpu: CpuTracker,
    now: datetime,
    active: set[str],
) -> list[NewAlert]:
    out = []
    if _over(sample.mem_percent, th.ram_percent, "ram" in active):
        out.append(
            NewAlert(
                host=host,
                key="ram",
                kind=AlertKind.RAM,
                message=f"memory in use {sample.mem_percent:.0f}% (threshold {th.ram_percent:g}%)",
                value=sample.mem_percent,
            )
        )
    above = cpu.update(_over(sample.cpu_percent, th.cpu_percent, "cpu" in active), now)
    if above and ("cpu" in active or above >= th.cpu_seconds):
        out.append(
            NewAlert(
                host=host,
                key="cpu",
                kind=AlertKind.CPU,
                message=(
                    f"CPU {sample.cpu_percent:.0f}% for {above:.0f} s "
                    f"(threshold {th.cpu_percent:g}% for {th.cpu_seconds:g} s)"
                ),
                value=sample.cpu_percent,
            )
        )
    if _over(sample.disk_percent, th.disk_percent, "disk" in active):
        out.append(
            NewAlert(
                host=host,
                key="disk",
                kind=AlertKind.DISK,
                severity=Severity.CRITICAL if sample.disk_percent >= 95 else Severity.WARNING,
                message=f"disk {sample.disk_percent:.0f}% full (threshold {th.disk_percent:g}%)",
                value=sample.disk_percent,
            )
        )
    return out


def session_alerts(
    host: str,
    th: Thresholds,
    sessions: Iterable[Session],
    procs: Mapping[str, ProcessInfo],
    health: Mapping[str, SessionHealth],
    active: set[str],
    at: int | None = None,
) -> list[NewAlert]:
    """A session in error (reported by its running runner, or parked by a crash loop)
    and a runner supervisord calls FATAL. A runner that is restarting after a crash is
    not "in error" until it is parked, so crash loops do not raise and clear on every
    cycle. Uptimes are taken at ``at`` (unix time), by default at each one's ``now``."""
    out = []
    for s in sessions:
        h = health.get(s.name)
        parked = h is not None and h.parked_at is not None
        info = procs.get(program_name(s.name))
        uptime = None if info is None else info.uptime if at is None else info.uptime_at(at)
        settled = (
            info is not None
            and info.state == ProcessState.RUNNING
            and (uptime or 0) >= th.startup_grace
        )
        key = f"session_error:{s.name}"
        if s.status == Status.ERROR and (
            parked or (s.desired_state == DesiredState.RUNNING and (settled or key in active))
        ):
            out.append(
                NewAlert(
                    host=host,
                    key=key,
                    kind=AlertKind.SESSION_ERROR,
                    severity=Severity.CRITICAL if parked else Severity.WARNING,
                    session_name=s.name,
                    message=f"session {s.name} is in error: {s.last_error or 'no detail'}"
                    + (" (parked: `zapvisor start` it once fixed)" if parked else ""),
                )
            )
        key = f"runner_fatal:{s.name}"
        wanted = s.desired_state == DesiredState.RUNNING or parked
        if (
            info is not None
            and wanted
            and (info.state == ProcessState.FATAL or (key in active and not settled))
        ):
            out.append(
                NewAlert(
                    host=host,
                    key=key,
                    kind=AlertKind.RUNNER_FATAL,
                    severity=Severity.CRITICAL,
                    session_name=s.name,
                    message=f"runner of {s.name} is FATAL: {info.spawnerr or 'it exits at start'}",
                )
            )
    return out


class DeadLetterSource(Protocol):
    def __call__(self) -> int | None: ...


def store_dead_letters(store: Store, host: str) -> DeadLetterSource:
    """Counts from ``Store.count_dead_letters`` (the webhook outbox's hook); None when
    the store keeps no outbox (or has not implemented it), so no alert."""

    def count() -> int | None:
        try:
            return store.count_dead_letters(host)
        except StoreUnsupported:
            return None

    return count


def dead_letter_alerts(host: str, count: int | None) -> list[NewAlert]:
    if not count:
        return []
    return [
        NewAlert(
            host=host,
            key="webhook_dead_letters",
            kind=AlertKind.WEBHOOK_DEAD_LETTERS,
            message=f"{count} webhook event(s) gave up after every retry",
            value=float(count),
        )
    ]


def reconcile(
    wanted: Iterable[NewAlert], active: Iterable[Alert]
) -> tuple[list[NewAlert], list[str]]:
    """(alerts to raise, keys to clear): raise what holds and is not active yet, clear
    what is active and no longer holds."""
    wanted_by_key = {a.key: a for a in wanted}
    active_keys = {a.key for a in active}
    to_raise = [a for k, a in wanted_by_key.items() if k not in active_keys]
    # alerts a runner raises and clears itself (its bot's) are not the monitor's to clear
    to_clear = sorted(k for k in active_keys - set(wanted_by_key) if not k.startswith(BOT_KEY))
    return to_raise, to_clear


def apply_alerts(
    store: Store, host: str, wanted: Sequence[NewAlert], active: Sequence[Alert]
) -> None:
    """Make the store's alerts of ``host`` say what holds now: raise the new ones,
    clear those that no longer hold, and give those that still hold their current
    figure (a dead-letter count that grew), without a new alert or notice."""
    to_raise, to_clear = reconcile(wanted, active)
    by_key = {a.key: a for a in active}
    for alert in wanted:
        old = by_key.get(alert.key)
        if old is not None and (old.message, old.value) != (alert.message, alert.value):
            # a schema before 0008 cannot: the alert keeps its first words (doctor asks
            # for `zapvisor db migrate`)
            with contextlib.suppress(StoreUnsupported, SchemaMissing):
                store.refresh_alert(host, alert.key, alert.message, alert.value)
    for alert in to_raise:
        if store.raise_alert(alert) is not None:
            log.warning("alert raised: %s", alert.message, extra={"alert": alert.key})
    for key in to_clear:
        if store.clear_alert(host, key) is not None:
            log.info("alert cleared: %s", key, extra={"alert": key})
