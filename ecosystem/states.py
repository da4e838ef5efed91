"""State constants: session statuses (the seed's seven), desired states, webhook
delivery states, and supervisord's process states.

Kept light (supervisor.states is stdlib-only) so every part (store, runner, UI) can
share them.
"""

from __future__ import annotations

from enum import StrEnum

from supervisor import states as _states


class Status(StrEnum):
    """Where a session's WhatsApp link stands, as its runner reports it."""

    INITIALIZING = "initializing"
    WAITING_SCAN = "waiting_scan"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    PHONE_DISCONNECTED = "phone_disconnected"
    ERROR = "error"
    RECONNECTING = "reconnecting"


class DeliveryState(StrEnum):
    """Where a webhook event's delivery stands."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


class DesiredState(StrEnum):
    """What the operator asked for; supervisord's program entry follows it."""

    RUNNING = "running"
    STOPPED = "stopped"


class ProcessState(StrEnum):
    """supervisord's process states, by the names its XML-RPC reports (``statename``);
    the codes and the groupings below are supervisor's own (``supervisor.states``, a
    stdlib-only module), so nothing here restates them."""

    STOPPED = "STOPPED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    BACKOFF = "BACKOFF"
    STOPPING = "STOPPING"
    EXITED = "EXITED"
    FATAL = "FATAL"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def of(cls, code: int) -> ProcessState:
        """The state supervisord's numeric ``state`` stands for."""
        return cls(_states.getProcessStateDescription(code))


def _named(codes: tuple[int, ...]) -> frozenset[ProcessState]:
    return frozenset(ProcessState.of(code) for code in codes)


RUNNING_STATES = _named(_states.RUNNING_STATES)
"""RUNNING, STARTING, BACKOFF: supervisord has a process or is bringing one up."""
STOPPED_STATES = _named(_states.STOPPED_STATES)
"""STOPPED, EXITED, FATAL, UNKNOWN: no process, and supervisord is not starting one."""
SIGNALLABLE_STATES = _named(_states.SIGNALLABLE_STATES)
"""RUNNING, STARTING, STOPPING: there is a process (a pid, an uptime, CPU and memory)."""

PROCESS_SERVING = frozenset({ProcessState.RUNNING, ProcessState.STARTING})
"""The runner may answer its API: RUNNING, or STARTING within supervisord's startsecs
(create returns as soon as /health answers, which is before supervisord says RUNNING)."""
PROCESS_UP = RUNNING_STATES | {ProcessState.STOPPING}
"""Up, or on its way up or down: an action on it is a stop (not a start)."""
EXITED_STATES = frozenset({ProcessState.EXITED, ProcessState.FATAL})
"""It ran and went down by itself: supervisord has an exit status (or spawn error)."""
FAILING_STATES = EXITED_STATES | {ProcessState.BACKOFF}
"""Down by itself, or failing to start: what the screens explain with stderr lines."""

SUPERVISORD_RUNNING = str(_states.getSupervisorStateDescription(_states.SupervisorStates.RUNNING))
"""supervisord's own state (``getState``) once it serves requests."""

RUNNER_RECYCLE_EXIT = 79
"""The exit status of a runner that ends itself to be started afresh (a native call
it cannot cancel is still blocked, or it has used up its client generations): not a
crash. supervisord's `exitcodes` lists it; the health monitor restarts such a runner at
once and counts it like the restarts it forces itself (only a loop of them parks)."""
