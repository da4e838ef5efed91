"""A runner's heartbeat: its slot in the state dir's heartbeat file (ecosystem/heartbeat.py)
written now, then again within ``beat_every`` or with the next work that wakes the loop."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

from ecosystem.heartbeat import ACTIVITY_SLACK, Heartbeats, beat_every
from ecosystem.settings import Settings


class Pulse:
    def __init__(
        self, settings: Settings, port: int, stopping: Callable[[], bool], full: Callable[[], int]
    ) -> None:
        self.port = port
        self.every = beat_every(settings.health_interval)
        self.stopping = stopping
        self.full = full
        """How many clients the port turned away since the last beat."""
        self.beats = Heartbeats.open(settings.home, settings.base_port, settings.max_sessions)
        self.next: asyncio.TimerHandle | None = None

    def beat(self, slack: float = 0.0) -> None:
        """Say the event loop runs, now and within ``beat_every``, and whether the port
        turned clients away meanwhile: the monitor asks /health only of runners whose
        beat stopped, and sees a full port here."""
        if self.next is not None:
            self.next.cancel()
            self.next = None
        if self.beats is None or self.stopping():
            return
        self.beats.beat(self.port, os.getpid(), time.monotonic(), self.full())
        self.next = asyncio.get_running_loop().call_later(self.every + slack, self.beat)

    def with_work(self) -> None:
        """The loop woke up for work (a QR code rotating): beat with it, and put the
        timed beat off, so that work coming back as often carries every beat and an
        idle runner wakes up for it alone."""
        if self.next is not None:  # none before the runner started beating
            self.beat(ACTIVITY_SLACK)
