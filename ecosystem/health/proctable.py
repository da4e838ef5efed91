"""supervisord's process table, kept by the monitor from the PROCESS_STATE events it
receives anyway, so a check does not ask supervisord for every program each time.

At 200 sessions one read of the table costs supervisord ~4 ms (``zapvisor.processes``;
~30 ms as `getAllProcessInfo`, from a supervisord started without it) and the monitor
about as much to parse; the events say the same for free. The table is read again
every ``resync`` seconds all the same, so an event lost in a full buffer is corrected
within five minutes. What events do not carry (exit status,
spawn error) is read for the one program when it matters. ``now`` in the snapshot is
that of each program's last change: ask ``uptime_at``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping

from ecosystem.states import STOPPED_STATES, ProcessState
from ecosystem.supctl.rpc import ProcessInfo

RESYNC_SECONDS = 300.0
_PREFIX = "PROCESS_STATE_"


class ProcessTable:
    """``resync`` 0 (the default) reads the whole table at every snapshot: for a
    monitor that is not fed events; the listener sets RESYNC_SECONDS."""

    def __init__(
        self,
        fetch: Callable[[], dict[str, ProcessInfo]],
        resync: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.fetch = fetch
        self.resync = resync
        self.clock = clock
        self._infos: dict[str, ProcessInfo] = {}
        self._synced_at: float | None = None

    def note(self, name: str, state: ProcessState) -> None:
        """What the monitor itself just asked supervisord to do (its event may come
        after the next pass)."""
        self.apply(_PREFIX + state, {"processname": name})

    def invalidate(self) -> None:
        self._synced_at = None

    def apply(self, event: str, headers: Mapping[str, str]) -> None:
        """One PROCESS_STATE_* event (name and payload headers)."""
        if not event.startswith(_PREFIX) or self._synced_at is None:
            return
        name = headers.get("processname", "")
        old = self._infos.get(name)
        if old is None:
            self.invalidate()  # a program we do not know: read the whole table again
            return
        try:
            state = ProcessState(event[len(_PREFIX) :])
        except ValueError:
            self.invalidate()  # a state this supervisord knows and we do not
            return
        now = int(self.clock())
        pid = old.pid
        if "pid" in headers and headers["pid"].isdigit():
            pid = int(headers["pid"]) or None
        changes: dict[str, object] = {"state": state, "pid": pid, "now": now}
        if state == ProcessState.STARTING:
            changes.update(start=now, exitstatus=0, spawnerr="")
        elif state in STOPPED_STATES | {ProcessState.BACKOFF}:
            changes["stop"] = now
        self._infos[name] = dataclasses.replace(old, **changes)  # type: ignore[arg-type]

    def snapshot(self) -> dict[str, ProcessInfo]:
        now = self.clock()
        if self._synced_at is None or now - self._synced_at >= self.resync:
            self._infos = self.fetch()
            self._synced_at = now
            return dict(self._infos)
        return dict(self._infos)
