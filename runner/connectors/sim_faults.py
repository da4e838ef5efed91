"""Faults on demand for sim sessions: FOR TESTS AND DEMOS ONLY.

A sim session's ``timing_config`` may hold a ``"sim"`` object that makes its runner
misbehave, so the health monitor's reactions can be exercised for real:

    {"sim": {"crash_after_seconds": 1}}     exit with status 1 that long after start
    {"sim": {"recycle_after_seconds": 2}}   recycle the runner (as neonize's connector
                                            does) that long after start
    {"sim": {"allocate_mb": 300}}           hold that much memory (resident) at start
    {"sim": {"stuck_status": "reconnecting"}}  report that status and stay in it

Anything else under "sim" is ignored; sessions on the real connector ignore it all.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ecosystem.states import Status

if TYPE_CHECKING:
    from runner.core import Runner

log = logging.getLogger("runner.sim")
SETTLE_SECONDS = 0.5
"""How long a stuck status waits for the connector's own first status."""

_ballast: list[bytearray] = []


@dataclass(frozen=True)
class SimFaults:
    crash_after_seconds: float | None = None
    recycle_after_seconds: float | None = None
    allocate_mb: int = 0
    stuck_status: Status | None = None

    @classmethod
    def from_timing_config(cls, config: Mapping[str, Any]) -> SimFaults | None:
        sim = config.get("sim")
        if not isinstance(sim, dict) or not sim:
            return None
        crash = sim.get("crash_after_seconds")
        recycle = sim.get("recycle_after_seconds")
        stuck = sim.get("stuck_status")
        return cls(
            crash_after_seconds=float(crash) if isinstance(crash, int | float) else None,
            recycle_after_seconds=float(recycle) if isinstance(recycle, int | float) else None,
            allocate_mb=max(0, int(sim.get("allocate_mb") or 0)),
            stuck_status=Status(stuck) if stuck in set(Status) else None,
        )


async def run(faults: SimFaults, runner: Runner) -> None:
    if faults.allocate_mb:
        # bytes written, not just reserved, so the pages are resident (count in PSS)
        _ballast.append(bytearray(b"\x01") * (faults.allocate_mb * 1024 * 1024))
        log.warning("sim fault: holding %d MB", faults.allocate_mb, extra={"event": "sim_fault"})
    if faults.stuck_status is not None:
        await asyncio.sleep(SETTLE_SECONDS)
        await runner.reporter.update(status=faults.stuck_status)
        log.warning("sim fault: stuck in %s", faults.stuck_status, extra={"event": "sim_fault"})
    if faults.crash_after_seconds is not None:
        await asyncio.sleep(faults.crash_after_seconds)
        message = f"sim fault: crash after {faults.crash_after_seconds:g} s"
        print(message, file=sys.stderr, flush=True)  # as a real crash's traceback would
        await runner.connector.events.failed(message)
        runner.fail(1)
    if faults.recycle_after_seconds is not None:
        await asyncio.sleep(faults.recycle_after_seconds)
        runner.recycle(f"sim fault: recycle after {faults.recycle_after_seconds:g} s")


def start(runner: Runner) -> asyncio.Task[None] | None:
    """Run the session's faults beside its connector (sim sessions only)."""
    if runner.connector.kind != "sim":
        return None
    faults = SimFaults.from_timing_config(runner.session.timing_config)
    if faults is None:
        return None
    return asyncio.create_task(run(faults, runner), name="sim-faults")
