"""Every operator action, one call each: the CLI and the TUI are two faces of these.

The door is one class; its methods live by concept in ``lifecycle.py`` (what runs),
``session_access.py`` (reaching one session: token, pairing, QR, webhooks, logs) and
``reads.py`` (listings, a host's report, alerts, doctor), ``bot_access.py`` (the
bot's keys), and ``fleet/door.py`` (every
host's sessions, placing a new one). Actions on a session run on its host
(``fleet/routing.py``). Every result is data that
survives a round trip through JSON (``ecosystem/fleet/codec.py``), so the same call can
run on another host.
"""

from __future__ import annotations

from ecosystem.bot_access import BotAccess
from ecosystem.fleet.door import FleetDoor
from ecosystem.plumbing import Progress, current_actor


class Orchestrator(BotAccess, FleetDoor):
    """The door: one method per operator action."""


__all__ = ["Orchestrator", "Progress", "current_actor"]
