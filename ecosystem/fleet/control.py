"""The door of the machine the operator types on, opened by every command and by the
terminal app. Its fleet links (sshlinks.py: asyncio, threads, SSH) are imported only
when the store can hold a fleet: a command on a one-host SQLite store does not pay
for them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecosystem.orchestrator import Orchestrator

if TYPE_CHECKING:
    from ecosystem.plumbing import Progress
    from ecosystem.settings import Settings
    from ecosystem.store.base import Store


def _quiet(_: str) -> None:
    pass


def control_side(
    settings: Settings, store: Store | None = None, *, progress: Progress = _quiet
) -> Orchestrator:
    """This host's Orchestrator, with SSH links to the fleet's other hosts when the
    store can hold a fleet (SQLite stays on one machine). Nothing is opened here: the
    store when first read, the links when a session or a host elsewhere is first
    reached."""
    orch = Orchestrator(settings, store, progress=progress)
    if settings.store_kind != "sqlite":
        from ecosystem.fleet.sshlinks import ssh_links

        orch.links = ssh_links(orch.paths, lambda: orch.store, settings.host_id)
    return orch
