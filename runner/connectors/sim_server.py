"""The simulated WhatsApp server, as far as the sim connector needs it: WhatsApp lets a
device hold one connection; a second connection of the same device replaces the first,
which is told so (StreamReplaced) and must never reconnect by itself.

Connections ("links") live in the store's ``sim_links`` table (migration 0009), or in
the database of ZAPVISOR_SIM_SERVER_URL, so a test can cut a host off from the store
and still see what its runners do with WhatsApp. Each link beats every
SIM_BEAT_SECONDS while in use (SIM_ONE_HOST_BEAT_SECONDS on a store no other host
uses); a replacement of a link that beat within SIM_LIVE_SECONDS is recorded as an
overlap: two hosts driving one device, which the leases must never let happen.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ecosystem.errors import SchemaMissing, StoreUnsupported, ZapvisorError
from ecosystem.lease import SIM_BEAT_SECONDS, SIM_LIVE_SECONDS, SIM_ONE_HOST_BEAT_SECONDS
from ecosystem.settings import Settings
from ecosystem.store import SHARED_STORES, Store

log = logging.getLogger("runner.sim")


class SimServer:
    def __init__(
        self, store: Store, host: str, *, owned: bool = False, shared: bool = True
    ) -> None:
        self.store = store
        self.host = host
        self._owned = owned
        self.beat_every = SIM_BEAT_SECONDS if shared else SIM_ONE_HOST_BEAT_SECONDS
        """How often a link beats: each beat is a write to the server's database."""
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="sim-server")
        self.available = True

    @classmethod
    def for_runner(cls, settings: Settings, store: Store) -> SimServer:
        """The server the settings point at: a database of its own, or the store."""
        if settings.sim_server_url is None:
            return cls(store, settings.host_id, shared=store.kind in SHARED_STORES)
        from ecosystem.store.postgres import PostgresStore

        own = PostgresStore(settings.sim_server_url.get_secret_value())
        return cls(own, settings.host_id, owned=True)

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def connect(self, device: str, session: str, epoch: int | None) -> int | None:
        """Open a link for ``device``; None when no server is reachable (the link then
        works without one: nothing to replace, nothing recorded)."""
        if not self.available:
            return None
        try:
            link, replaced = await self._call(
                self.store.sim_open,
                device,
                session,
                self.host,
                os.getpid(),
                epoch,
                SIM_LIVE_SECONDS,
            )
        except (StoreUnsupported, SchemaMissing) as exc:
            log.warning("no simulated server: %s", exc, extra={"event": "sim_server_off"})
            self.available = False
            return None
        except ZapvisorError as exc:
            # the link works without it (as before there was a server): opened again at
            # the next beat
            log.warning("simulated server unreachable: %s", exc, extra={"event": "sim_open"})
            return None
        for old in replaced:
            how = "in use" if old.get("live") else "idle"
            log.warning(
                "replaced the link of %s on %s (pid %s, %s)",
                device,
                old.get("host"),
                old.get("pid"),
                how,
                extra={"event": "sim_replaced_other"},
            )
        return int(link)

    async def beat(self, link: int) -> tuple[bool, str | None, str | None]:
        """(still open, why closed, by which host); open when the server cannot be
        reached (as a real link does while its network is merely slow)."""
        try:
            result: tuple[bool, str | None, str | None] = await self._call(
                self.store.sim_beat, link
            )
        except ZapvisorError as exc:
            log.warning("simulated server unreachable: %s", exc, extra={"event": "sim_beat"})
            return True, None, None
        return result

    async def close(self, link: int, reason: str) -> None:
        try:
            await asyncio.wait_for(self._call(self.store.sim_close, link, reason), 5.0)
        except (ZapvisorError, TimeoutError) as exc:
            log.warning("cannot close the simulated link: %s", exc, extra={"event": "sim_close"})

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._owned:
            self.store.close()
