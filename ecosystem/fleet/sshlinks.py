"""The links of a real fleet: the control side's HostLinks (links.py) opening each host's
`zapvisor agent --stdio` on that host's one SSH connection (ssh.py), as the store's
hosts table describes it. The tests' fleet on one machine opens agents over pipes
instead (tests/fleet_local.py); everything above the opener is the same.

``control_side`` is the door the CLI and the terminal app open: this host's own
Orchestrator, with these links whenever its store can hold a fleet. asyncssh is
imported when a first link opens, not before, so commands that touch no other host do
not pay for it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ecosystem.errors import ZapvisorError
from ecosystem.fleet.links import AgentStreams, HostLinks
from ecosystem.paths import StatePaths
from ecosystem.store.base import Store

if TYPE_CHECKING:
    from ecosystem.fleet.ssh import SSHPool

CLOSE_WAIT = 2.0
"""Seconds a closing link waits for its channel to close (a silent host never answers)."""
HOSTS_TTL = 5.0
"""Seconds the fleet's list of hosts is reused before the store is asked again: a live
view asks for it every refresh, and hosts come and go by `zapvisor hosts add|remove`."""
STDERR_LINES = 20
"""Lines of an agent's stderr kept to say why it ended."""

StoreOf = Callable[[], Store]
"""The store, opened when first needed (a terminal app starts while its store is down)."""


class StoreHosts:
    """The fleet's other hosts by name, from the store's hosts table, read again once
    ``ttl`` seconds old. A store that fails raises here, as every other read does."""

    def __init__(self, store: StoreOf, local_host: str, ttl: float = HOSTS_TTL) -> None:
        self.store = store
        self.local_host = local_host
        self.ttl = ttl
        self._names: list[str] = []
        self._read_at: float | None = None
        self._lock = threading.Lock()

    def __call__(self) -> list[str]:
        with self._lock:
            now = time.monotonic()
            if self._read_at is None or now - self._read_at >= self.ttl:
                hosts = self.store().list_hosts()
                self._names = [h.name for h in hosts if h.name != self.local_host]
                self._read_at = now
            return list(self._names)

    def expire(self) -> None:
        """Read the table again at the next call (a host was just added or removed)."""
        with self._lock:
            self._read_at = None


class SSHLinks(HostLinks):
    """HostLinks whose agents run on the hosts' SSH connections; closing them closes
    those connections too."""

    def __init__(self, paths: StatePaths, store: StoreOf, local_host: str) -> None:
        super().__init__(self._open, hosts=StoreHosts(store, local_host))
        self.paths = paths
        self.store = store
        self.pool: SSHPool | None = None
        """The loop's SSH connections, once a first link opened."""

    def connections(self) -> SSHPool:
        """The hosts' SSH connections (call on the links' loop): the agents' and any
        other channel to the same hosts share them."""
        from ecosystem.fleet.ssh import pool_for

        self.pool = pool_for(self.paths)
        return self.pool

    async def _open(self, host: str, timeout: float) -> AgentStreams:
        """A host's agent: its record read from the store now (so a new address, port or
        trusted key takes effect at the next link), on its one connection."""
        record = await asyncio.to_thread(self.store().get_host, host)
        channel = await self.connections().open_agent(record, timeout=timeout)
        # The agent logs on stderr: read it all the time (an unread channel fills its
        # window and stalls the agent), keeping the last lines to say why it ended.
        tail: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)

        async def drain() -> None:
            with contextlib.suppress(Exception):
                while line := await channel.stderr.readline():
                    tail.append(line.decode("utf-8", "replace").rstrip())

        drained = asyncio.get_running_loop().create_task(drain())

        async def close() -> None:
            channel.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(channel.wait_closed(), CLOSE_WAIT)
            drained.cancel()

        async def why() -> ZapvisorError | None:
            from ecosystem.fleet.remote import remote_error
            from ecosystem.fleet.ssh import RemoteResult

            try:
                await asyncio.wait_for(channel.wait_closed(), CLOSE_WAIT)
                await asyncio.wait_for(asyncio.shield(drained), CLOSE_WAIT)
            except Exception:
                return None  # still running (slow to say hello), or no word of why
            status = channel.process.exit_status
            if not status and not tail:
                return None
            ended = RemoteResult(255 if status is None else status, "", "\n".join(tail))
            return remote_error(host, [record.zapvisor_path, "agent", "--stdio"], ended)

        return AgentStreams(channel.reader, channel.writer, close, why)

    async def aclose(self) -> None:
        await super().aclose()
        if self.pool is not None:
            await self.pool.close()


def ssh_links(paths: StatePaths, store: StoreOf, local_host: str) -> SSHLinks:
    """HostLinks to every other host of the store's fleet, over SSH."""
    return SSHLinks(paths, store, local_host)
