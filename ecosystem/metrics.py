"""Host and per-runner resource figures, cheap enough for a 1 s refresh.

A process's CPU % is the CPU time it used since the previous sample, so the sampler
keeps each process's previous figures between ticks (a first sample says 0.0).
PSS (proportional set size: shared pages split between the processes sharing them) is
the honest memory figure for many similar runners, but reading it walks every mapping
(~60 ms for 200 processes): it is refreshed only every ``pss_every`` seconds and kept
in between.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
    disk_percent: float
    """As `df` says it: of the space an unprivileged process can use (without the
    blocks reserved for root), so a disk reads 100% when writes start failing."""

    @property
    def mem_percent(self) -> float:
        """Memory in use (all but what is available), of the total."""
        return 100.0 * self.mem_used / self.mem_total if self.mem_total else 0.0


def host_stats(path: Path) -> HostStats:
    """CPU (since the previous call: never sleeps), memory, and the disk holding
    ``path``: what the app's header shows and the health monitor's alerts watch."""
    import psutil  # here, not above: a command that reads no figures does not load it

    mem = psutil.virtual_memory()
    try:
        disk_used, disk_total, disk_percent = _disk(path)
    except OSError:
        disk_used = disk_total = 0
        disk_percent = 0.0
    return HostStats(
        cpu_percent=psutil.cpu_percent(interval=None),
        cpu_count=psutil.cpu_count() or 1,
        load1=os.getloadavg()[0],
        mem_used=mem.total - mem.available,
        mem_total=mem.total,
        disk_used=disk_used,
        disk_total=disk_total,
        disk_percent=disk_percent,
    )


def _disk(path: Path) -> tuple[int, int, float]:
    import psutil

    # The state dir may not exist yet on a fresh machine: measure its nearest parent.
    for candidate in (path, *path.parents):
        if candidate.exists():
            usage = psutil.disk_usage(str(candidate))
            return usage.used, usage.total, usage.percent
    return 0, 0, 0.0


@dataclass(frozen=True)
class ProcStats:
    cpu_percent: float
    """Of one core, since the previous sample (0.0 on the first)."""
    rss: int
    pss: int | None
    """None until the first PSS pass has seen this process."""


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def read_proc_stat(pid: int) -> tuple[int, float, int] | None:
    """(start time, CPU seconds used, RSS bytes) from one read of /proc/<pid>/stat;
    None when the process is gone."""
    try:  # os.open rather than open(): no buffered file object made, 200 times a second
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
        try:
            data = os.read(fd, 4096)
        finally:
            os.close(fd)
    except OSError:
        return None
    # The command name may hold spaces and parentheses: fields start after the last ')'.
    fields = data[data.rindex(b")") + 2 :].split()
    utime, stime, start, rss = fields[11], fields[12], fields[19], fields[21]
    return int(start), (int(utime) + int(stime)) / _TICK, int(rss) * _PAGE


FULL_EVERY = 5.0
"""Seconds between two reads of a pid a sampler's caller does not show now."""


class ProcessSampler:
    """One pass over a set of pids per call; not thread-safe (one caller).

    On Linux, CPU time and RSS come from a single read of /proc/<pid>/stat per process
    (psutil's Process API reads two files and parses more: about six times the cost at
    200 runners, every second); elsewhere from psutil.Process objects. PSS always
    comes from psutil (``memory_full_info``).

    A caller that shows a few of the pids at a time (a live view's rows on screen) names
    them (``fresh_of``): those are read at every call, the others every ``full_every``
    seconds, their last figures repeated meanwhile (a CPU % is then the average since
    their last read). At 200 runners and 20 rows on screen that is ~60 reads a second
    instead of 200, each a file opened, read and closed.
    """

    def __init__(
        self,
        pss_every: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        use_proc: bool | None = None,
        first_pss_after: float = 0.0,
        full_every: float = FULL_EVERY,
    ) -> None:
        """``first_pss_after``: seconds before the first PSS pass (0: at the first
        sample), for a caller whose first sample should come back soon."""
        self.pss_every = pss_every
        self.full_every = full_every
        self._last_full = -math.inf
        self._figures: dict[int, tuple[float, int]] = {}
        """pid → its last (CPU %, RSS): what a call that does not read it repeats."""
        self._clock = clock
        self.use_proc = os.path.exists("/proc/self/stat") if use_proc is None else use_proc
        self._prev: dict[int, tuple[int, float, float]] = {}
        """pid → (start time, CPU seconds, when), for the /proc way."""
        self._procs: dict[int, psutil.Process] = {}
        self._pss: dict[int, int] = {}
        self._last_pss = clock() - pss_every + first_pss_after if first_pss_after else -math.inf

    def sample(
        self,
        pids: Iterable[int],
        pss_of: Collection[int] | None = None,
        fresh_of: Collection[int] | None = None,
    ) -> dict[int, ProcStats]:
        """``pss_of``: the pids whose PSS is read (every ``pss_every`` seconds, and at
        once for one not read yet); None: every pid's. A view that shows no PSS asks
        for none: a pass over 200 runners costs ~60 ms. ``fresh_of``: the pids whose
        CPU and RSS are read at this call, the others' only every ``full_every``
        seconds (or when never read); None: every pid's."""
        import psutil

        wanted = set(pids)
        for gone in (self._prev.keys() | self._procs.keys() | self._figures.keys()) - wanted:
            self._forget(gone)
        now = self._clock()
        with_pss = now - self._last_pss >= self.pss_every
        if with_pss:
            self._last_pss = now
        full = fresh_of is None or now - self._last_full >= self.full_every
        if full:
            self._last_full = now
        out: dict[int, ProcStats] = {}
        for pid in wanted:
            kept = not full and pid not in (fresh_of or ())
            figures = self._figures.get(pid) if kept else None
            if figures is None:
                figures = self._from_proc(pid) if self.use_proc else self._from_psutil(pid)
            if figures is None:
                self._forget(pid)
                continue
            self._figures[pid] = figures
            if pss_of is not None and pid not in pss_of:
                self._pss.pop(pid, None)  # not shown: not kept up to date either
            elif with_pss or (pss_of is not None and pid not in self._pss):
                # gone since, or another user's: the figure stays unknown
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    self._pss[pid] = psutil.Process(pid).memory_full_info().pss
            out[pid] = ProcStats(figures[0], figures[1], self._pss.get(pid))
        return out

    def _forget(self, pid: int) -> None:
        self._figures.pop(pid, None)
        self._prev.pop(pid, None)
        self._procs.pop(pid, None)
        self._pss.pop(pid, None)

    def _from_proc(self, pid: int) -> tuple[float, int] | None:
        stat = read_proc_stat(pid)
        if stat is None:
            return None
        start, used, rss = stat
        at = time.monotonic()
        prev = self._prev.get(pid)
        cpu = 0.0
        if prev is not None and prev[0] == start and at > prev[2]:
            cpu = max(0.0, 100.0 * (used - prev[1]) / (at - prev[2]))
        elif prev is not None:
            self._pss.pop(pid, None)  # the pid was reused by another process
        self._prev[pid] = (start, used, at)
        return cpu, rss

    def _from_psutil(self, pid: int) -> tuple[float, int] | None:
        import psutil

        proc = self._procs.get(pid)
        try:
            if proc is None:
                proc = self._procs[pid] = psutil.Process(pid)
            with proc.oneshot():
                return proc.cpu_percent(interval=None), proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None
