"""What the neonize connector does after a client ends, and how it tells the next
runner when this one has to go first.

neonize cannot end an unpaired client: ``Neonize()`` blocks a thread in whatsmeow's QR
loop (or, after the QR window or a network drop, in a loop waiting for a device id),
checking no cancellation; and every client opens an SQLite store it never closes. So
when a client's thread outlives its stop, or after ``MAX_CLIENTS`` clients, the runner
flushes everything and exits (``RUNNER_RECYCLE_EXIT``) and a fresh one carries on from
`tokens/<name>/handover.json`: wait for POST /start, retry after a delay, or pair again
(removing the old auth first, which only a process with no client may do).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NoReturn

from ecosystem.paths import write_private
from ecosystem.states import Status
from runner.connectors.base import RestartRunner

log = logging.getLogger("runner.neonize")
HANDOVER = "handover.json"
HANDOVER_MAX_AGE = 120.0
"""A handover older than this is stale (the runner was stopped, not recycled): a start
after that connects as usual."""
MAX_CLIENTS = 10
"""Clients one runner creates before it recycles itself (one leaked descriptor each)."""


@dataclass(frozen=True)
class Next:
    """What to do before the next client."""

    wait: float | None = 0.0
    """Seconds to wait first; None: until POST /start (or a restart)."""
    status: Status | None = None
    """Reported while waiting (with ``reason`` as the session's last error)."""
    reason: str = ""
    forget_auth: bool = False
    """Remove `tokens/<name>/` first: the device was unlinked or logged out."""
    failures: int | None = None
    """Failed connects so far (the backoff's step), carried over a recycle."""


def hand_over(auth_dir: Path, step: Next, *, stuck: bool) -> NoReturn:
    """Leave ``step`` to the next runner and have this one recycled: its last client's
    connect call cannot be ended (``stuck``), or it used MAX_CLIENTS clients."""
    why = (
        "the last client's connect call cannot be ended (whatsmeow's QR loop)"
        if stuck
        else f"{MAX_CLIENTS} clients used (neonize keeps a store open for each)"
    )
    save(auth_dir, step)
    raise RestartRunner(f"{why}; a fresh runner carries on")


def save(auth_dir: Path, step: Next, *, clock: float | None = None) -> None:
    record = {"at": time.time() if clock is None else clock, **asdict(step)}
    write_private(auth_dir / HANDOVER, json.dumps(record))


def take(auth_dir: Path, *, now: float | None = None) -> Next | None:
    """The step the last runner left, once (the file is removed); None when there is
    none, it is stale or unreadable."""
    path = auth_dir / HANDOVER
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring an unreadable %s: %s", path, exc, extra={"event": "handover"})
        path.unlink(missing_ok=True)
        return None
    path.unlink(missing_ok=True)
    try:
        age = (time.time() if now is None else now) - float(record.pop("at"))
        status = record.pop("status")
        step = Next(status=Status(status) if status else None, **record)
        if not (step.wait is None or isinstance(step.wait, int | float)):
            raise ValueError(f"wait {step.wait!r}")
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("ignoring a malformed %s: %s", path, exc, extra={"event": "handover"})
        return None
    if not 0 <= age <= HANDOVER_MAX_AGE:
        # stale: connect as usual, but an unlinked device's auth still goes
        return Next(forget_auth=True) if step.forget_auth else None
    return step
