"""Runners' heartbeats: one shared file, one slot per port, written from memory.

The health monitor must notice a runner whose event loop is stuck; asking each runner's
``/health`` at every check costs a connection, a request and an answer per runner per
interval, on both sides: at 200 sessions that alone kept the host busy at rest. Instead
each runner writes (monotonic time, pid) into its slot of `heartbeats` (mapped shared
memory: no system call per beat) from its event loop, and the monitor reads every slot
at once. A slot that stopped moving is what a stuck loop looks like; the monitor then
asks ``/health`` before it calls it hung.

A runner beats at least every ``beat_every(ZAPVISOR_HEALTH_INTERVAL)`` seconds, and also
when its loop wakes up for work anyway (a QR code rotating): waking an idle process
costs ~0.2 ms of CPU here, so 200 runners beating every check (5 s) spent ~1 % of a
core on nothing else. A stuck loop is therefore seen up to ``beat_every`` later than a
beat per check would show it; ``fresh_for`` is the age the monitor still accepts.

A beat also says whether the runner's port is full (``full``: the connections it held
when it had to turn clients away since the previous beat, 0 otherwise), so the monitor
warns of a saturated port without asking it (asking a full port is what cannot work).

A slot is ``port - BASE_PORT``: ports are unique per host and within
``BASE_PORT…BASE_PORT+MAX_SESSIONS-1``. A port outside that range has no slot (its
runner is simply asked ``/health``). CLOCK_MONOTONIC is one clock for every process of
the host, so a beat's age is comparable across them.
"""

from __future__ import annotations

import logging
import mmap
import os
import struct
from pathlib import Path
from typing import NamedTuple

SLOT = struct.Struct("=dii")
"""(time.monotonic() of the beat, the runner's pid, its port's ``full``). 16 bytes, as
the (time, 64-bit pid) slot it replaced: a runner of that layout still reads as
(time, pid, 0) on this little-endian host, and the old monitor reads a new runner's pid
as a mismatch, so it asks that runner /health; nobody misreads a neighbour's slot."""


BEAT_CHECKS = 4
"""A runner beats at least once every this many health checks."""
ACTIVITY_SLACK = 1.0
"""A beat made because the loop woke up for work puts the next timed beat this much
further than ``beat_every``: work that comes back every ``beat_every`` seconds (a
runner's QR every 20 s with the default 5 s checks) then carries every beat, rather
than a timed beat waking the loop a moment before it."""


def beat_every(interval: float) -> float:
    """The longest a runner goes without beating when nothing else wakes it up."""
    return BEAT_CHECKS * interval


def fresh_for(interval: float) -> float:
    """How old a beat may be and still prove its runner's loop runs: the longest gap
    between two beats, one check, and a second for a late timer."""
    return beat_every(interval) + ACTIVITY_SLACK + interval + 1.0


class Beat(NamedTuple):
    when: float
    pid: int
    full: int


def beats_path(home: Path) -> Path:
    return home / "heartbeats"


class Heartbeats:
    """The file's slots, mapped; ``size`` slots are made available (the file only grows,
    so runners of a larger MAX_SESSIONS never lose theirs to one of a smaller)."""

    def __init__(self, path: Path, base_port: int, size: int) -> None:
        self.base_port = base_port
        self.size = size
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            wanted = SLOT.size * size
            if os.fstat(fd).st_size < wanted:
                os.posix_fallocate(fd, 0, wanted)
            self._map = mmap.mmap(fd, os.fstat(fd).st_size)
        finally:
            os.close(fd)

    @classmethod
    def open(cls, home: Path, base_port: int, size: int) -> Heartbeats | None:
        """A runner's: the state dir's file, or None (logged) when it cannot be made,
        and the monitor asks `/health` instead."""
        try:
            return cls(beats_path(home), base_port, size)
        except OSError as exc:
            logging.getLogger("runner").warning(
                "no heartbeat (the monitor asks /health instead): %s", exc
            )
            return None

    def _offset(self, port: int) -> int | None:
        slot = port - self.base_port
        if 0 <= slot < self.size and (slot + 1) * SLOT.size <= len(self._map):
            return slot * SLOT.size
        return None

    def beat(self, port: int, pid: int, now: float, full: int = 0) -> None:
        offset = self._offset(port)
        if offset is not None:
            SLOT.pack_into(self._map, offset, now, pid, min(full, 2**31 - 1))

    def last(self, port: int) -> Beat | None:
        """The last beat on ``port``, None when it has no slot or none."""
        offset = self._offset(port)
        if offset is None:
            return None
        beat = Beat(*SLOT.unpack_from(self._map, offset))
        return beat if beat.pid > 0 else None

    def close(self) -> None:
        self._map.close()
