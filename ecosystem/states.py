"""State constants: session statuses (the seed's seven) and desired states.

Kept dependency-free so every part (store, runner, UI) can share them.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """Where a session's WhatsApp link stands, as its runner reports it."""

    INITIALIZING = "initializing"
    WAITING_SCAN = "waiting_scan"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    PHONE_DISCONNECTED = "phone_disconnected"
    ERROR = "error"
    RECONNECTING = "reconnecting"


class DesiredState(StrEnum):
    """What the operator asked for; supervisord's program entry follows it."""

    RUNNING = "running"
    STOPPED = "stopped"


# supervisord's process state names (supervisor.states.ProcessStates), by name only.
PROCESS_RUNNING = "RUNNING"
# The runner may answer its API: RUNNING, or STARTING within supervisord's startsecs
# (create returns as soon as /health answers, which is before supervisord says RUNNING).
PROCESS_SERVING = frozenset({"RUNNING", "STARTING"})
PROCESS_UP = frozenset({"RUNNING", "STARTING", "BACKOFF", "STOPPING"})
PROCESS_DOWN = frozenset({"STOPPED", "EXITED", "FATAL", "UNKNOWN"})

RUNNER_RECYCLE_EXIT = 79
"""The exit status of a runner that ends itself to be started afresh (a native call
it cannot cancel is still blocked, or it has used up its client generations): not a
crash. supervisord's `exitcodes` lists it; the health monitor restarts such a runner at
once and counts it like the restarts it forces itself (only a loop of them parks)."""
