"""zapvisor's own namespace in supervisord's XML-RPC interface: ``zapvisor.*``.

supervisord imports this module itself (``[rpcinterface:zapvisor]`` in its config), so
it stays tiny: the standard library and supervisor only, nothing else of zapvisor's
(but forkspawn.py when the section asks for forked runners: that one loads the
runners' code into supervisord on purpose).

``getAllProcessInfo`` answers 14 fields per program as XML-RPC structs: at 200 programs
~250 KB of XML that costs both sides more than everything else in a refresh. The
process table zapvisor reads is a handful of those fields; ``zapvisor.processes``
answers them as one JSON string (an XML-RPC string is parsed in one piece).

A supervisord started with a config that predates this section has no such method
(Fault UNKNOWN_METHOD) until it is restarted: callers fall back to getAllProcessInfo.
"""

from __future__ import annotations

import json
import time
from typing import Any

from supervisor.states import SupervisorStates, getProcessStateDescription
from supervisor.xmlrpc import Faults, RPCError

FORMAT = 1
"""Bumped when the rows change shape; a reader that does not know the format falls
back to getAllProcessInfo."""

FIELDS = ("name", "statename", "pid", "start", "stop", "exitstatus", "spawnerr")
"""One row per program, in this order (as getProcessInfo names them)."""


class ZapvisorNamespace:
    """The methods supervisord serves as ``zapvisor.<method>``."""

    def __init__(self, supervisord: Any) -> None:
        self.supervisord = supervisord

    def processes(self) -> str:
        """The process table as one JSON text:
        {"format": 1, "now": unix time, "fields": [...], "rows": [[...], ...]},
        one row per program, values as getAllProcessInfo gives them.

        @return string result  the table, as JSON
        """
        mood = self.supervisord.options.mood
        if isinstance(mood, int) and mood < SupervisorStates.RUNNING:
            raise RPCError(Faults.SHUTDOWN_STATE)
        now = int(time.time())
        rows = []
        groups = self.supervisord.process_groups
        for group_name in sorted(groups):
            processes = groups[group_name].processes
            for name in sorted(processes):
                p = processes[name]
                rows.append(
                    [
                        p.config.name,
                        getProcessStateDescription(p.get_state()),
                        p.pid,
                        int(p.laststart),
                        int(p.laststop),
                        p.exitstatus or 0,
                        p.spawnerr or "",
                    ]
                )
        table = {"format": FORMAT, "now": now, "fields": FIELDS, "rows": rows}
        return json.dumps(table, separators=(",", ":"))


def make_interface(supervisord: Any, **config: str) -> ZapvisorNamespace:
    """supervisord's ``supervisor.rpcinterface_factory`` for ``[rpcinterface:zapvisor]``.
    With ``fork_runners = true`` in that section, runners start as forks of this
    supervisord (forkspawn.py, which loads the runner's modules into it). Its loop
    sleeps while nothing is timed, and wakes for signals (quietloop.py)."""
    options = supervisord.options
    if config.get("fork_runners") == "true":
        try:
            from ecosystem.supctl import forkspawn

            forkspawn.install(options, options.logger.warn)
        except Exception as exc:  # supervisord runs on, exec'ing runners
            options.logger.warn(f"zapvisor: runners will be exec'd, not forked: {exc!r}")
    try:
        from ecosystem.supctl import quietloop

        quietloop.install(supervisord, options.logger.warn)
    except Exception as exc:  # supervisord runs on, polling every second
        options.logger.warn(f"zapvisor: supervisord polls every second: {exc!r}")
    return ZapvisorNamespace(supervisord)
