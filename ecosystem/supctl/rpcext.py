"""zapvisor's own namespace in supervisord's XML-RPC interface: ``zapvisor.*``.

supervisord imports this module itself (``[rpcinterface:zapvisor]`` in its config), so
it stays tiny: the standard library and supervisor only, nothing else of zapvisor's
(but forkspawn.py when the section asks for forked runners: that one loads the
runners' code into supervisord on purpose).

``getAllProcessInfo`` answers 14 fields per program as XML-RPC structs: at 200 programs
~250 KB of XML that costs both sides more than everything else in a refresh. The
process table zapvisor reads is a handful of those fields; ``zapvisor.processes``
answers them as one JSON string (an XML-RPC string is parsed in one piece).

``reloadConfig`` re-parses every section of the config file (~40 ms at 200 programs)
to add one; ``zapvisor.addPrograms`` parses only the new sections, with the same
expansions, into the same configs a reread would (so a later reread finds them
unchanged and restarts nothing).

A supervisord started with a config that predates this section has no such methods
(Fault UNKNOWN_METHOD) until it is restarted: callers fall back to getAllProcessInfo
and reloadConfig.
"""

from __future__ import annotations

import configparser
import json
import time
from typing import Any

from supervisor.options import UnhosedConfigParser
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

    def _running(self) -> None:
        mood = self.supervisord.options.mood
        if isinstance(mood, int) and mood < SupervisorStates.RUNNING:
            raise RPCError(Faults.SHUTDOWN_STATE)

    def processes(self) -> str:
        """The process table as one JSON text:
        {"format": 1, "now": unix time, "fields": [...], "rows": [[...], ...]},
        one row per program, values as getAllProcessInfo gives them.

        @return string result  the table, as JSON
        """
        self._running()
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

    def addPrograms(self, text: str) -> list[str]:
        """Add the ``[program:x]`` sections of ``text`` (as the config file now holds
        them) as reloadConfig then addProcessGroup would, without re-reading the file:
        parsed as a reread parses them (the same options, ``%(here)s`` and ``ENV_``
        expansions, [supervisord]'s environment merged in), so a later reloadConfig
        finds them unchanged. Nothing is added unless all can be.

        @param string text  one or more [program:x] sections, nothing else
        @return array result  the names of the groups added
        """
        self._running()
        options = self.supervisord.options
        parser = UnhosedConfigParser()
        parser.expansions = options.environ_expansions
        try:
            parser.read_string(text)
            sections = parser.sections()
            if not sections or not all(s.startswith("program:") for s in sections):
                raise ValueError(f"only [program:x] sections can be added, not {sections}")
            groups = options.process_groups_from_parser(parser)
        except (ValueError, configparser.Error) as exc:
            raise RPCError(Faults.CANT_REREAD, str(exc)) from None
        environment = options.configroot.supervisord.environment
        for group in groups:
            for proc in group.process_configs:
                merged = environment.copy()
                merged.update(proc.environment)
                proc.environment = merged
        names = [group.name for group in groups]
        present = set(self.supervisord.process_groups)
        present.update(config.name for config in options.process_group_configs)
        taken = sorted(present.intersection(names))
        if taken:
            raise RPCError(Faults.ALREADY_ADDED, ", ".join(taken))
        for group in groups:
            # what addProcessGroup finds by name until the next reread replaces the list
            options.process_group_configs.append(group)
            self.supervisord.add_process_group(group)
        return names


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
