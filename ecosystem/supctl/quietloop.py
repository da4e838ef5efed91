"""supervisord's loop sleeps while nothing it does is timed, and wakes for a signal.

supervisord's loop (``runforever``) polls its descriptors with a fixed 1 s timeout, then
walks every program: at 200 sessions each wake-up costs it ~1 ms of CPU, every second,
for nothing at rest. What the second is for is timed work: a program STARTING (RUNNING
after ``startsecs``), in BACKOFF (its next try), STOPPING (SIGKILL after
``stopwaitsecs``), EXITED or never started with a restart or an autostart due, an event
waiting for a listener, an XML-RPC answer deferred (supervisord polls it), a
shutdown, a TICK event due to a listener that subscribed to it. And signals: Python
retries a poll that a signal interrupted (PEP 475), so a runner's exit (SIGCHLD) was
reaped at the next second, not when it happened.

Installed in supervisord (``rpcext.make_interface``), this makes the poll's timeout
that same 1 s while any of the above holds, and otherwise the time to the next tick
somebody listens to, at most ``QUIET_MAX``; and it gives the poll a descriptor that
signals wake up (``signal.set_wakeup_fd``), so an exit, a SIGTERM or a SIGHUP is handled
at once. Everything that arrives on a descriptor (an XML-RPC connection, a program's
output, a listener's answer) wakes the poll as before.

Like rpcext.py this runs inside supervisord: the standard library and supervisor only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import Any

from supervisor import events
from supervisor.datatypes import RestartUnconditionally
from supervisor.process import EventListenerPool
from supervisor.states import ProcessStates, SupervisorStates

BUSY_TIMEOUT = 1.0
"""supervisord's own timeout: while anything is timed, its loop runs as it always did."""
QUIET_MAX = 30.0
"""The longest supervisord sleeps when nothing is timed: a safety net only (whatever
is due wakes it: a descriptor, a signal, a tick)."""

_TIMED = frozenset({ProcessStates.STARTING, ProcessStates.BACKOFF, ProcessStates.STOPPING})


def _restart_due(proc: Any) -> bool:
    """What supervisord's ``transition`` would start at its next pass (process.py)."""
    state, config = proc.state, proc.config
    if state == ProcessStates.EXITED and config.autorestart:
        return (
            config.autorestart is RestartUnconditionally or proc.exitstatus not in config.exitcodes
        )
    return state == ProcessStates.STOPPED and not proc.laststart and bool(config.autostart)


def busy(supervisord: Any) -> bool:
    """Whether supervisord has timed work: its loop must come round within 1 s."""
    if supervisord.options.mood != SupervisorStates.RUNNING:
        return True
    for dispatcher in list(supervisord.options.get_socket_map().values()):
        if getattr(dispatcher, "delay", 0):
            return True  # an XML-RPC answer deferred (startProcess waiting…): polled
    for group in supervisord.process_groups.values():
        if isinstance(group, EventListenerPool) and group.event_buffer:
            return True
        for proc in group.processes.values():
            if proc.state in _TIMED or _restart_due(proc):
                return True
    return False


def next_tick(now: float) -> float | None:
    """Seconds to the next TICK event a listener subscribed to, None when none did."""
    waits = [
        tick.period - now % tick.period
        for tick in events.TICK_EVENTS
        if any(issubclass(tick, kind) for kind, _ in events.callbacks)
    ]
    return min(waits) if waits else None


def quiet_timeout(supervisord: Any, now: float) -> float:
    if busy(supervisord):
        return BUSY_TIMEOUT
    tick = next_tick(now)
    # a hair past the boundary: supervisord sends a tick once its timeslice has changed
    return QUIET_MAX if tick is None else min(QUIET_MAX, tick + 0.01)


class QuietPoll:
    """Replaces ``options.poller.poll`` (see the module's doc)."""

    def __init__(self, supervisord: Any, poll: Any, wake_fd: int) -> None:
        self.supervisord = supervisord
        self.inner = poll
        self.wake_fd = wake_fd
        self.wakes = 0
        """Loop passes started by a signal (what tests look at)."""

    def __call__(self, timeout: float) -> tuple[list[int], list[int]]:
        poller = self.supervisord.options.poller
        poller.register_readable(self.wake_fd)
        if timeout == BUSY_TIMEOUT:  # runforever's own: ours only replaces that one
            try:
                timeout = quiet_timeout(self.supervisord, time.time())
            except Exception:  # never break supervisord's loop: poll as it always did
                timeout = BUSY_TIMEOUT
        readable, writable = self.inner(timeout)
        if self.wake_fd in readable:
            readable = [fd for fd in readable if fd != self.wake_fd]
            self.wakes += 1
            with contextlib.suppress(BlockingIOError):
                while os.read(self.wake_fd, 512):
                    pass
        return readable, writable


_wake: tuple[int, int] | None = None
"""The signal pipe (read end, write end): one per supervisord, kept across reloads."""


def install(supervisord: Any, log: Any) -> QuietPoll | None:
    """Have ``supervisord``'s loop sleep while it is quiet. None (and its loop keeps its
    1 s) when signals cannot wake it: then it must not sleep longer."""
    global _wake
    poller = supervisord.options.poller
    current = poller.poll
    if isinstance(current, QuietPoll):  # a reload: the same loop, new groups
        current.supervisord = supervisord
        return current
    if _wake is None:
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        os.set_blocking(write_end, False)
        try:
            old = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        except ValueError as exc:  # not the main thread
            log(f"zapvisor: supervisord polls every second: {exc}")
            os.close(read_end)
            os.close(write_end)
            return None
        if old != -1:  # somebody else's: leave it
            signal.set_wakeup_fd(old)
            os.close(read_end)
            os.close(write_end)
            log("zapvisor: supervisord polls every second: a signal wake-up is set already")
            return None
        _wake = (read_end, write_end)
    quiet = QuietPoll(supervisord, poller.poll, _wake[0])
    poller.poll = quiet
    return quiet


def forget_in_child() -> None:
    """In a child forked from supervisord (forkspawn.py): its signals must not write to
    supervisord's pipe (closed there, its number soon reused by the child)."""
    signal.set_wakeup_fd(-1)
