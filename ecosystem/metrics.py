"""Host and per-runner resource figures from psutil, cheap enough for a 1 s refresh.

A process's CPU % is the CPU time it used since the previous sample of the *same*
``psutil.Process`` object, so the sampler keeps those objects between ticks (a fresh
object always says 0.0). PSS (proportional set size: shared pages split between the
processes sharing them) is the honest memory figure for many similar runners, but
reading it walks every mapping (~60 ms for 200 processes): it is refreshed only every
``pss_every`` seconds and kept in between.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class HostStats:
    cpu_percent: float
    cpu_count: int
    load1: float
    mem_used: int
    mem_total: int
    disk_used: int
    disk_total: int

    @property
    def mem_percent(self) -> float:
        return 100.0 * self.mem_used / self.mem_total if self.mem_total else 0.0

    @property
    def disk_percent(self) -> float:
        return 100.0 * self.disk_used / self.disk_total if self.disk_total else 0.0


def host_stats(path: Path) -> HostStats:
    """CPU (since the previous call), memory, and the disk holding ``path``."""
    mem = psutil.virtual_memory()
    try:
        disk_used, disk_total = _disk(path)
    except OSError:
        disk_used = disk_total = 0
    return HostStats(
        cpu_percent=psutil.cpu_percent(interval=None),
        cpu_count=psutil.cpu_count() or 1,
        load1=os.getloadavg()[0],
        mem_used=mem.total - mem.available,
        mem_total=mem.total,
        disk_used=disk_used,
        disk_total=disk_total,
    )


def _disk(path: Path) -> tuple[int, int]:
    # The state dir may not exist yet on a fresh machine: measure its nearest parent.
    for candidate in (path, *path.parents):
        if candidate.exists():
            usage = psutil.disk_usage(str(candidate))
            return usage.used, usage.total
    return 0, 0


@dataclass(frozen=True)
class ProcStats:
    cpu_percent: float
    """Of one core, since the previous sample (0.0 on the first)."""
    rss: int
    pss: int | None
    """None until the first PSS pass has seen this process."""


class ProcessSampler:
    """One psutil pass over a set of pids per call; not thread-safe (one caller)."""

    def __init__(
        self, pss_every: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.pss_every = pss_every
        self._clock = clock
        self._procs: dict[int, psutil.Process] = {}
        self._pss: dict[int, int] = {}
        self._last_pss = float("-inf")

    def sample(self, pids: Iterable[int]) -> dict[int, ProcStats]:
        wanted = set(pids)
        for gone in self._procs.keys() - wanted:
            del self._procs[gone]
            self._pss.pop(gone, None)
        now = self._clock()
        with_pss = now - self._last_pss >= self.pss_every
        if with_pss:
            self._last_pss = now
        out: dict[int, ProcStats] = {}
        for pid in wanted:
            proc = self._procs.get(pid)
            try:
                if proc is None:
                    proc = self._procs[pid] = psutil.Process(pid)
                with proc.oneshot():
                    cpu = proc.cpu_percent(interval=None)
                    rss = proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                self._procs.pop(pid, None)
                self._pss.pop(pid, None)
                continue
            if with_pss:
                # gone since, or another user's: the figure stays unknown
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    self._pss[pid] = proc.memory_full_info().pss
            out[pid] = ProcStats(cpu, rss, self._pss.get(pid))
        return out
