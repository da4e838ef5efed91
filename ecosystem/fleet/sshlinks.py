"""The links of a real fleet: the control side's HostLinks (links.py) opening each host's
`zapvisor agent --stdio` on that host's one SSH connection (ssh.py), as the store's
hosts table describes it. The tests' fleet on one machine opens agents over pipes
instead (tests/fleet_local.py); everything above the opener is the same."""

from __future__ import annotations

import asyncio
import contextlib

from ecosystem.fleet.links import AgentStreams, HostLinks, Opener
from ecosystem.fleet.ssh import open_agent
from ecosystem.paths import StatePaths
from ecosystem.store.base import Store

CLOSE_WAIT = 2.0
"""Seconds a closing link waits for its channel to close (a silent host never answers)."""


def ssh_opener(paths: StatePaths, store: Store) -> Opener:
    """Open a host's agent over SSH: its record read from the store when the link opens
    (so a new address, port or trusted key takes effect at the next link)."""

    async def open_link(host: str, timeout: float) -> AgentStreams:
        record = await asyncio.to_thread(store.get_host, host)
        channel = await open_agent(record, paths, timeout=timeout)

        async def close() -> None:
            channel.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(channel.wait_closed(), CLOSE_WAIT)

        return AgentStreams(channel.reader, channel.writer, close)

    return open_link


def ssh_links(paths: StatePaths, store: Store, local_host: str) -> HostLinks:
    """HostLinks to every other host of the store's fleet, over SSH."""

    def hosts() -> list[str]:
        return [h.name for h in store.list_hosts() if h.name != local_host]

    return HostLinks(ssh_opener(paths, store), hosts=hosts)
