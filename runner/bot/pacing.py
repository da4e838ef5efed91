"""How the bot paces itself (timing_config): the reply delay, quiet hours, the
per-contact cooldown, and the session's outbound limit, which the API's sends share."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from runner.api import RateLimit

if TYPE_CHECKING:  # the bot's config is loaded with the first message it answers
    from ecosystem.botconfig import QuietHours, TimingConfig


def draw_delay(
    timing: TimingConfig, rng: Callable[[float, float], float] = random.uniform
) -> float:
    low, high = timing.reply_delay
    return low if low == high else rng(low, high)


def in_quiet_hours(quiet: QuietHours | None, now: datetime | None = None) -> bool:
    if quiet is None:
        return False
    from zoneinfo import ZoneInfo  # only a bot with quiet hours needs it

    local = (now or datetime.now(UTC)).astimezone(ZoneInfo(quiet.tz))
    return quiet.covers(local.time())


class Cooldown:
    """When each contact last got a reply (monotonic), to hold the next one back."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._last: dict[str, float] = {}

    def remaining(self, contact: str, seconds: float) -> float:
        last = self._last.get(contact)
        return 0.0 if last is None or seconds <= 0 else max(0.0, last + seconds - self.clock())

    def replied(self, contact: str) -> None:
        self._last[contact] = self.clock()
        if len(self._last) > 10_000:  # forget the oldest; a cooldown is minutes, not days
            for old in sorted(self._last, key=self._last.__getitem__)[:5_000]:
                del self._last[old]


class OutboundLimit:
    """The session's sends per minute (timing_config.outbound_per_minute), the bot's
    and the API's together; follows the config as it changes."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.per_minute = 0
        self._bucket = RateLimit(0, clock)

    def configure(self, per_minute: int) -> None:
        if per_minute != self.per_minute:
            self.per_minute = per_minute
            self._bucket = RateLimit(per_minute, self.clock)

    def take(self) -> float:
        """0 when a message may go now (and it is counted), else seconds to wait."""
        return self._bucket.take()
