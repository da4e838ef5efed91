"""The monitor's decisions as pure functions of what it saw and the time.

Nothing here talks to supervisord, the store or the network, and the time is always
passed in, so every rule is unit-tested with a made-up clock (tests/test_health_policy.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ecosystem.backoff import doubling
from ecosystem.health.model import SessionHealth
from ecosystem.session import Session
from ecosystem.settings import Settings
from ecosystem.states import RUNNER_RECYCLE_EXIT, ProcessState, Status

STDERR_LINES = 20
"""How many of a runner's last stderr lines are kept with a crash."""


@dataclass(frozen=True)
class Policy:
    interval: float = 5.0
    failures: int = 3
    probe_timeout: float = 2.0
    crash_window: float = 600.0
    crash_max_exits: int = 5
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    memory_cap_mb: int | None = None
    reconnecting_timeout: float = 300.0
    qr_grace: float = 60.0
    start_timeout: float = 20.0

    @classmethod
    def from_settings(cls, s: Settings) -> Policy:
        return cls(
            interval=s.health_interval,
            failures=s.health_failures,
            probe_timeout=s.health_timeout,
            crash_window=s.crash_window,
            crash_max_exits=s.crash_max_exits,
            backoff_base=s.backoff_base,
            backoff_max=s.backoff_max,
            memory_cap_mb=s.max_session_memory_mb,
            reconnecting_timeout=s.reconnecting_timeout,
            qr_grace=s.qr_grace,
            start_timeout=s.start_timeout,
        )


# -- crash loops -----------------------------------------------------------------------


def backoff_delay(policy: Policy, exits_in_window: int) -> float:
    """Seconds to wait before restarting after the ``exits_in_window``-th exit: the
    first restarts at once (a one-off crash costs nothing), then base, 2*base, 4*base...
    up to ``backoff_max``."""
    if exits_in_window <= 1:
        return 0.0
    return doubling(exits_in_window - 2, policy.backoff_base, policy.backoff_max)


def window_text(seconds: float) -> str:
    minutes = seconds / 60
    shown = f"{minutes:.2f}".rstrip("0").rstrip(".")
    return f"{shown} minute" + ("" if shown == "1" else "s")


def describe_exit(state: str, exit_status: int | None, spawn_error: str = "") -> str:
    """Why a runner went down, in words (supervisord reports -1 for a signal)."""
    if state == ProcessState.FATAL and spawn_error and "too quickly" not in spawn_error:
        return f"could not start: {spawn_error}"
    if exit_status is None:
        return "exited right after starting" if state == ProcessState.FATAL else f"runner {state}"
    text = "killed by a signal" if exit_status < 0 else f"exited with status {exit_status}"
    return text + (" right after starting" if state == ProcessState.FATAL else "")


def recycled(state: str, exit_status: int | None) -> bool:
    """The runner exited by itself to be started afresh (RUNNER_RECYCLE_EXIT): not a
    crash. It is restarted at once and counted like the monitor's own forced restarts,
    so only a loop of them backs off and parks."""
    return state == ProcessState.EXITED and exit_status == RUNNER_RECYCLE_EXIT


@dataclass(frozen=True)
class ExitDecision:
    park: bool
    delay: float
    exits_in_window: int
    reason: str


def on_exit(
    policy: Policy,
    health: SessionHealth,
    now: datetime,
    *,
    what: str,
    exit_status: int | None,
    stderr_tail: str | None,
) -> tuple[SessionHealth, ExitDecision]:
    """Count one unexpected exit; decide between a (delayed) restart and parking.

    ``what`` describes the exit (see :func:`describe_exit`)."""
    window = timedelta(seconds=policy.crash_window)
    recent = [t for t in health.recent_exits if now - t < window] + [now]
    n = len(recent)
    tail = _tail(stderr_tail)
    down = what + (f"; stderr: {_last_lines(tail, 3)}" if tail else "")
    updated = health.model_copy(
        update={
            "exits": health.exits + 1,
            "recent_exits": recent,
            "last_exit_status": exit_status,
            "last_exit_at": now,
            "stderr_tail": tail or health.stderr_tail,
        }
    )
    if n >= policy.crash_max_exits:
        reason = f"crash loop: {n} exits in {window_text(policy.crash_window)}"
        updated = updated.model_copy(
            update={"parked_at": now, "next_restart_at": None, "why_down": f"{reason}; {down}"}
        )
        return updated, ExitDecision(True, 0.0, n, reason)
    delay = backoff_delay(policy, n)
    updated = updated.model_copy(
        update={"next_restart_at": now + timedelta(seconds=delay), "why_down": down}
    )
    return updated, ExitDecision(False, delay, n, what)


def on_forced_restart(
    policy: Policy, health: SessionHealth, now: datetime, *, reason: str
) -> tuple[SessionHealth, ExitDecision]:
    """Count one restart the monitor forces (hung, memory, stuck) in the same sliding
    window as exits: a runner that hangs, bloats or gets stuck again right after every
    restart is a loop like a crash loop, backed off the same way and parked after
    ``crash_max_exits`` in the window, instead of restarted forever. Its ``exits``
    (crashes) do not change."""
    window = timedelta(seconds=policy.crash_window)
    recent = [t for t in health.recent_exits if now - t < window] + [now]
    n = len(recent)
    updated = health.model_copy(
        update={"recent_exits": recent, "last_restart_reason": reason, "why_down": reason}
    )
    if n >= policy.crash_max_exits:
        park = f"crash loop: {n} exits in {window_text(policy.crash_window)}"
        updated = updated.model_copy(
            update={"parked_at": now, "next_restart_at": None, "why_down": f"{park}; {reason}"}
        )
        return updated, ExitDecision(True, 0.0, n, park)
    delay = backoff_delay(policy, n)
    updated = updated.model_copy(update={"next_restart_at": now + timedelta(seconds=delay)})
    return updated, ExitDecision(False, delay, n, reason)


def unpark(health: SessionHealth) -> SessionHealth:
    """An operator started a parked session: its crash window starts afresh."""
    return health.model_copy(
        update={"parked_at": None, "recent_exits": [], "next_restart_at": None, "why_down": None}
    )


def restarted(health: SessionHealth, now: datetime) -> SessionHealth:
    """The monitor started the runner again (``last_restart_reason`` was set when the
    restart was decided)."""
    return health.model_copy(
        update={"restarts": health.restarts + 1, "last_restart_at": now, "next_restart_at": None}
    )


def restart_due(health: SessionHealth, now: datetime) -> bool:
    return health.next_restart_at is not None and health.next_restart_at <= now


def _tail(text: str | None) -> str | None:
    if not text:
        return None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return "\n".join(lines[-STDERR_LINES:]) or None


def _last_lines(text: str, n: int) -> str:
    return " | ".join(text.splitlines()[-n:])


# -- hung runners, memory, stuck states --------------------------------------------------


@dataclass
class HungTracker:
    """Consecutive failed /health checks per session.

    Hung means connected and not answered (a stopped or deadlocked process still
    completes TCP handshakes), on its port and on its private health socket alike: a
    runner whose port is saturated by other clients answers the socket, and is busy,
    not hung. A runner whose port refuses connections is starting or
    exiting on its own, so refusals count only once they have lasted ``start_timeout``
    seconds; likewise a runner that has not answered once since it started has that
    long before its failures count (a slow start on a loaded host must not be killed
    again and again, and a crash must be seen as a crash, not as a hang)."""

    failures: int
    start_timeout: float = 20.0
    counts: dict[str, int] = field(default_factory=dict)
    answered: dict[str, int] = field(default_factory=dict)
    """The pid of each session's runner that has answered at least once."""
    refused_since: dict[str, datetime] = field(default_factory=dict)

    def observe(self, name: str, pid: int, result: str, uptime: float, now: datetime) -> int:
        """Record one check (``probe.OK``/``REFUSED``/``FAILED``); returns the number
        of failures in a row that count."""
        if result in ("ok", "busy"):  # busy: alive, its port saturated by others
            self.answered[name] = pid
            self.counts[name] = 0
            self.refused_since.pop(name, None)
            return 0
        if result == "refused":
            since = self.refused_since.setdefault(name, now)
            if (now - since).total_seconds() < self.start_timeout:
                return self.counts.get(name, 0)
        else:
            self.refused_since.pop(name, None)
            if self.answered.get(name) != pid and uptime < self.start_timeout:
                return 0
        count = self.counts.get(name, 0) + 1
        self.counts[name] = count
        return count

    def hung(self, name: str) -> bool:
        return self.counts.get(name, 0) >= self.failures

    def up(self, name: str, pid: int) -> bool:
        """The runner ``pid`` has answered /health since it started."""
        return self.answered.get(name) == pid

    def forget(self, name: str) -> None:
        self.counts.pop(name, None)
        self.refused_since.pop(name, None)


def memory_reason(policy: Policy, pss_bytes: int) -> str | None:
    cap = policy.memory_cap_mb
    if not cap:
        return None
    mb = pss_bytes / (1024 * 1024)
    if mb <= cap:
        return None
    return f"memory: {mb:.0f} MB PSS over the {cap} MB cap"


TIMED = frozenset({Status.RECONNECTING, Status.WAITING_SCAN})
"""The statuses a session can get stuck in (see :func:`stuck_reason`)."""


@dataclass
class StatusClock:
    """Since when each session has been in its current status.

    A status first seen by this monitor (it just started, or the runner just came up)
    is dated by ``first_seen`` (the audit trail's last transition, not before the
    runner's start), so a monitor restarted meanwhile does not start counting again;
    a change seen from one check to the next is dated by the check."""

    seen: dict[str, tuple[Status, datetime]] = field(default_factory=dict)

    def observe(
        self,
        name: str,
        status: Status,
        now: datetime,
        first_seen: Callable[[], datetime | None] | None = None,
    ) -> datetime:
        previous = self.seen.get(name)
        if previous is not None and previous[0] == status:
            return previous[1]
        since = now
        if previous is None and first_seen is not None and status in TIMED:
            since = min(now, first_seen() or now)
        self.seen[name] = (status, since)
        return since

    def forget(self, name: str) -> None:
        self.seen.pop(name, None)


def stuck_reason(policy: Policy, session: Session, since: datetime, now: datetime) -> str | None:
    """Why a running session looks stuck, or None."""
    if session.status == Status.RECONNECTING:
        stuck_for = (now - since).total_seconds()
        if stuck_for > policy.reconnecting_timeout:
            return f"stuck: reconnecting for {stuck_for:.0f} s"
    elif session.status == Status.WAITING_SCAN:
        # A fresh QR moves qr_expires_at forward; one that stays in the past means the
        # connector stopped producing QR codes.
        ref = session.qr_expires_at or since
        late = (now - max(ref, since)).total_seconds()
        if late > policy.qr_grace:
            return f"stuck: waiting_scan with no fresh QR for {late:.0f} s"
    return None
