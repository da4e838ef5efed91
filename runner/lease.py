"""A runner's hold on its session: it talks to WhatsApp only while its host holds the
session's lease in the store.

A session another host may take over (its auth in a shared store) needs the lease
before it connects: the runner listens and answers /health meanwhile, saying what it
waits for. A session no other host can drive (local auth, or a one-host store such as
SQLite) runs without waiting: the keeper takes the lease in the background, for the
fence and for `show`, whenever the store lets it.

The keeper takes the lease at start (a new epoch; every store write of this runner then
carries it, see base_lease.LeaseMethods.fence), renews it every third of
ZAPVISOR_LEASE_SECONDS, and keeps a deadline on its own monotonic clock: the moment the
last successful renewal was *sent*, plus the lease minus a margin. Past the deadline
it lets go of WhatsApp (``held`` clears) whether or not the store ever answers, so a
runner cut off from the store, or frozen, disconnects before any other host may take
the session over. A renewal that succeeds again (nobody took it meanwhile) gives it
back; one the store refuses (another holder, a newer epoch) ends it for good: ``lost``.

Renewals and the deadline run as two tasks, so a renewal stuck on a frozen database
cannot hold the deadline back.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ecosystem.errors import (
    LeaseHeld,
    LeaseLost,
    NotThisHost,
    SchemaMissing,
    StoreError,
    StoreUnsupported,
    ZapvisorError,
)
from ecosystem.lease import Fence, LeaseTiming
from ecosystem.store import Store

log = logging.getLogger("runner.lease")

RETRY_SECONDS = 1.0
"""How soon a failed renewal (or a refused start) is tried again."""


class LeaseKeeper:
    def __init__(
        self, store: Store, session: str, host: str, timing: LeaseTiming, *, required: bool = True
    ) -> None:
        self.store = store
        self.session = session
        self.host = host
        self.timing = timing
        self.required = required
        """Whether the runner must hold the lease to talk to WhatsApp (and let go when it
        cannot renew it): only a session another host may take over needs to. One that
        cannot be driven from elsewhere runs without it, and rides out a store outage
        connected."""
        self.waiting = ""
        """Why the lease is not taken yet (the store's refusal or error), for /health."""
        self.fence: Fence | None = None
        self.deadline = 0.0
        """Monotonic time after which this runner must not talk to WhatsApp."""
        self.unleased = False
        """The store keeps no leases (an older schema): run as before, with no fence."""
        self.held = asyncio.Event()
        """Set while the runner may talk to WhatsApp."""
        self.lapsed = asyncio.Event()
        """Set when the deadline passed without a renewal (cleared when one succeeds)."""
        self.lost = asyncio.Event()
        self.lost_reason = ""
        self.on_lost: Callable[[str], None] | None = None
        self._moved = asyncio.Event()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="lease")
        self._tasks: list[asyncio.Task[None]] = []

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def may_drive(self) -> bool:
        """Whether the runner may use its WhatsApp link at this instant."""
        if not self.required:
            return self.held.is_set()
        return self.held.is_set() and time.monotonic() < self.deadline

    def seconds_left(self) -> float:
        return self.deadline - time.monotonic()

    def describe(self) -> str:
        """Where the lease stands, in a few words (the `lease` of /health)."""
        if self.lost.is_set():
            return f"lost: {self.lost_reason}"
        if self.unleased:
            return "none: the store keeps no leases"
        if self.fence is not None:
            if self.required and not self.held.is_set():
                return f"lapsed: not renewed in time (epoch {self.fence.epoch})"
            return f"held (epoch {self.fence.epoch})"
        if self.required:
            return f"waiting: {self.waiting or 'asking the store'}"
        return f"not taken yet, not needed (cannot fail over): {self.waiting or 'asking'}"

    # -- taking it -----------------------------------------------------------------

    def go_without(self, stop: asyncio.Event) -> None:
        """Run now, without the lease (a session that cannot fail over), and take it in
        the background once the store allows: then it is renewed and fences writes."""
        assert not self.required
        self.deadline = math.inf
        self.held.set()
        self._tasks.append(asyncio.create_task(self._take_later(stop), name="lease-take"))

    async def _take_later(self, stop: asyncio.Event) -> None:
        try:
            if await self.acquire(stop):
                self.start()
        except NotThisHost as exc:
            self.mark_lost(str(exc))

    async def acquire(self, stop: asyncio.Event, *, once: bool = False) -> bool:
        """Take the lease, waiting while another host holds it (a move under way) or the
        store does not answer. False when asked to stop first, or with ``once`` when the
        first try did not take it (said by the wait that follows). Raises NotThisHost
        when the session now runs on another host."""
        said = ""
        while not stop.is_set():
            began = time.monotonic()
            try:
                lease = await self._call(
                    self.store.acquire_lease, self.session, self.host, self.timing.ttl
                )
            except (StoreUnsupported, SchemaMissing) as exc:
                log.warning(
                    "the store keeps no leases (%s): this session cannot fail over, and "
                    "nothing fences a second runner; run `zapvisor db migrate`",
                    exc,
                    extra={"event": "unleased"},
                )
                self.unleased = True
                self.deadline = math.inf
                self.held.set()
                return True
            except NotThisHost:
                raise
            except (LeaseHeld, StoreError) as exc:
                self.waiting = str(exc)
                if once:
                    return False
                if self.waiting != said:
                    what = "waiting for the lease" if self.required else "lease not taken yet"
                    log.warning("%s: %s", what, exc, extra={"event": "lease_wait"})
                    said = self.waiting
            else:
                await self._call(self.store.set_fence, lease.fence)
                self.fence = lease.fence
                self.waiting = ""
                if self.required:
                    self.deadline = began + self.timing.hold_for
                self.held.set()
                log.info(
                    "lease taken (epoch %d, %g s)",
                    lease.epoch,
                    self.timing.ttl,
                    extra={"event": "lease_taken", "epoch": lease.epoch},
                )
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RETRY_SECONDS)
        return False

    # -- keeping it ----------------------------------------------------------------

    def start(self) -> None:
        if self.unleased or self.fence is None:
            return
        self._tasks.append(asyncio.create_task(self._renew_loop(), name="lease-renew"))
        if self.required:
            self._tasks.append(asyncio.create_task(self._watch(), name="lease-watch"))

    async def _renew_loop(self) -> None:
        assert self.fence is not None
        next_at = time.monotonic() + self.timing.renew_every
        failing = ""
        while True:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            began = time.monotonic()
            try:
                await self._call(self.store.renew_lease, self.session, self.fence, self.timing.ttl)
            except LeaseLost as exc:
                self.mark_lost(str(exc))
                return
            except ZapvisorError as exc:
                if str(exc) != failing:
                    log.warning(
                        "cannot renew the lease (%.1f s left before letting go of WhatsApp): %s",
                        self.seconds_left(),
                        exc,
                        extra={"event": "lease_renew_failed"},
                    )
                    failing = str(exc)
                next_at = time.monotonic() + min(RETRY_SECONDS, self.timing.renew_every)
                continue
            failing = ""
            if self.required:
                self.deadline = began + self.timing.hold_for
            self._moved.set()
            if not self.held.is_set() and not self.lost.is_set():
                log.info("lease renewed again: reconnecting", extra={"event": "lease_regained"})
                self.lapsed.clear()
                self.held.set()
            next_at = began + self.timing.renew_every

    async def _watch(self) -> None:
        while True:
            self._moved.clear()
            left = self.seconds_left()
            if left > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._moved.wait(), left)
                continue
            if self.held.is_set():
                log.error(
                    "the lease was not renewed in time: letting go of WhatsApp before another "
                    "host may take the session over",
                    extra={"event": "lease_lapsed"},
                )
                self.held.clear()
                self.lapsed.set()
            await self._moved.wait()

    def mark_lost(self, reason: str) -> None:
        """The store refused this runner's lease (a write or a renewal): stop for good."""
        if self.lost.is_set():
            return
        log.error("%s: stopping without reconnecting", reason, extra={"event": "lease_lost"})
        self.lost_reason = reason
        self.held.clear()
        self.lapsed.set()
        self.lost.set()
        if self.on_lost is not None:
            self.on_lost(reason)

    # -- letting go ----------------------------------------------------------------

    async def say_lost(self, pid: int) -> None:
        """Into the audit trail, the one place a runner that lost its lease may write."""
        detail = {"host": self.host, "pid": pid, "reason": self.lost_reason}
        with contextlib.suppress(ZapvisorError, TimeoutError):
            write = functools.partial(self.store.add_event, actor="runner", detail=detail)
            await asyncio.wait_for(asyncio.to_thread(write, self.session, "lease_lost"), 5.0)

    async def close(self, *, release: bool = True) -> None:
        """Stop renewing; end the lease now unless it was lost (so a planned stop frees
        the session at once rather than after the lease runs out)."""
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
        if release and self.fence is not None and not self.lost.is_set():
            try:
                await asyncio.wait_for(
                    self._call(self.store.release_lease, self.session, self.fence), 5.0
                )
            except (ZapvisorError, TimeoutError) as exc:
                log.warning("cannot release the lease: %s", exc, extra={"event": "lease_release"})
        self._pool.shutdown(wait=False, cancel_futures=True)
