"""Every operator action, one call each: the CLI and the TUI are two faces of these.

The door is one class; its methods live by concept in ``lifecycle.py`` (what runs),
``session_access.py`` (reaching one session: token, pairing, QR, webhooks, logs) and
``reads.py`` (listings, a host's report, alerts, doctor), ``fleet/door.py`` (every
host's sessions, placing a new one), ``logs_all.py`` (every session's log lines in
one stream), ``backups.py`` (backup and restore), ``declare.py`` (a fleet file's
plan, apply and export), ``failover_actions.py`` (planned moves, what moved, a
session's failover switch) and ``bot_access.py`` (the bot's keys). Actions on a
session run on its host (``fleet/routing.py``). Every result is data that survives a
round trip through JSON (``ecosystem/fleet/codec.py``), so the same call can run on
another host.
"""

from __future__ import annotations

from ecosystem.backups import Backups
from ecosystem.bot_access import BotAccess
from ecosystem.declare import Declarations
from ecosystem.failover_actions import FailoverActions
from ecosystem.logs_all import LogStreams
from ecosystem.plumbing import Progress, current_actor


class Orchestrator(BotAccess, Declarations, Backups, LogStreams, FailoverActions):
    """The door: one method per operator action."""


__all__ = ["Orchestrator", "Progress", "current_actor"]
