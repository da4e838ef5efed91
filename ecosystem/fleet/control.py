"""The door of the machine the operator types on, opened by every command and by the
terminal app. Its fleet links (sshlinks.py: asyncio, threads, SSH) are imported only
when the store can hold a fleet: a command on a one-host SQLite store does not pay
for them.

A listing opens the reading side alone (``reading_side``): the door's reads, the same
code, without importing the modules of its other actions (backups, fleet files, log
streams, moves, the bot's keys), which were a tenth of a short `list`'s time."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from ecosystem.fleet.door import FleetDoor
    from ecosystem.orchestrator import Orchestrator
    from ecosystem.plumbing import Plumbing, Progress
    from ecosystem.settings import Settings
    from ecosystem.store.base import Store

D = TypeVar("D", bound="Plumbing")


def _quiet(_: str) -> None:
    pass


def control_side(
    settings: Settings, store: Store | None = None, *, progress: Progress = _quiet
) -> Orchestrator:
    """This host's Orchestrator, with SSH links to the fleet's other hosts when the
    store can hold a fleet (SQLite stays on one machine). Nothing is opened here: the
    store when first read, the links when a session or a host elsewhere is first
    reached."""
    from ecosystem.orchestrator import Orchestrator

    return _linked(Orchestrator(settings, store, progress=progress), settings)


def reading_side(
    settings: Settings, store: Store | None = None, *, progress: Progress = _quiet
) -> FleetDoor:
    """The door's reads (every host's sessions, a host's report, health, alerts),
    linked to the fleet as ``control_side`` is; the Orchestrator is this class and the
    other actions' classes, none of which changes a read."""
    from ecosystem.fleet.door import FleetDoor

    return _linked(FleetDoor(settings, store, progress=progress), settings)


def _linked(door: D, settings: Settings) -> D:
    if settings.store_kind != "sqlite":
        from ecosystem.fleet.sshlinks import ssh_links

        door.links = ssh_links(door.paths, lambda: door.store, settings.host_id)
    return door
