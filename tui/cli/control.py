"""The door a command opens: this host's Orchestrator with links to the fleet's other
hosts (over SSH, opened only when a command reaches one), closed when the command ends
so that each host's agent and connection end with it.

The core is imported by the first door opened, not with this module: main() imports it
for close_all(), and a command that opens no door (--help, a usage error) must not pay
for the core's import chain."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ecosystem.fleet.door import FleetDoor
    from ecosystem.orchestrator import Orchestrator
    from ecosystem.plumbing import Plumbing

_OPENED: list[Plumbing] = []


def door() -> Orchestrator:
    from ecosystem.fleet.control import control_side
    from ecosystem.settings import load_settings
    from tui.cli import output

    orch = control_side(load_settings(), progress=output.progress)
    _OPENED.append(orch)
    return orch


def reading_door() -> FleetDoor:
    """The door's reads alone, for a listing (see ecosystem/fleet/control.py)."""
    from ecosystem.fleet.control import reading_side
    from ecosystem.settings import load_settings
    from tui.cli import output

    door = reading_side(load_settings(), progress=output.progress)
    _OPENED.append(door)
    return door


def close_all() -> None:
    while _OPENED:
        _OPENED.pop().close()
