"""The door a command opens: this host's Orchestrator with links to the fleet's other
hosts (over SSH, opened only when a command reaches one), closed when the command ends
so that each host's agent and connection end with it."""

from __future__ import annotations

from ecosystem.fleet.sshlinks import control_side
from ecosystem.orchestrator import Orchestrator
from ecosystem.settings import load_settings
from tui.cli import output

_OPENED: list[Orchestrator] = []


def door() -> Orchestrator:
    orch = control_side(load_settings(), progress=output.progress)
    _OPENED.append(orch)
    return orch


def close_all() -> None:
    while _OPENED:
        _OPENED.pop().close()
