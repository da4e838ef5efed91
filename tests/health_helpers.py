"""Looking at a test installation directly (store + supervisord's XML-RPC), so polling
does not cost a zapvisor process per look and never runs an apply."""

from __future__ import annotations

import os
from typing import Any

from ecosystem import runner_client
from ecosystem.health import status as monitor_status
from ecosystem.health.model import SessionHealth
from ecosystem.models import Event, Session
from ecosystem.names import program_name
from ecosystem.paths import StatePaths
from ecosystem.store.sqlite import SQLiteStore
from ecosystem.supctl import daemon
from ecosystem.supctl.render import MONITOR_PROGRAM
from ecosystem.supctl.rpc import ProcessInfo, SupervisorDown
from tests.conftest import Env

FAST = {
    "ZAPVISOR_HEALTH_INTERVAL": "0.5",
    "ZAPVISOR_HEALTH_FAILURES": "2",
    "ZAPVISOR_HEALTH_TIMEOUT": "0.5",
}
"""Checks twice a second (the default is every 5 s) so the tests stay short."""


class Look:
    def __init__(self, env: Env) -> None:
        self.paths = StatePaths(env.home)
        self.store = SQLiteStore(env.home / "zapvisor.db")
        self.sup = daemon.client(self.paths)

    def close(self) -> None:
        self.store.close()

    def info(self, name: str) -> ProcessInfo | None:
        return self.sup.process_info(program_name(name))

    def proc(self, name: str) -> ProcessInfo:
        """info() of a session whose program supervisord must have."""
        info = self.info(name)
        assert info is not None, f"supervisord has no program for {name}"
        return info

    def session(self, name: str) -> Session:
        return self.store.get_session(name)

    def health(self, name: str) -> SessionHealth:
        return self.store.get_health(name)

    def events(self, name: str, action: str) -> list[Event]:
        found = self.store.list_events(name, limit=1000)
        return [e for e in reversed(found) if e.action == action]

    def up(self, name: str) -> int | None:
        """The runner's pid when it is RUNNING and answers /health, else None (also
        while supervisord does not answer yet)."""
        try:
            info = self.info(name)
        except SupervisorDown:
            return None
        if info is None or info.state != "RUNNING" or not info.pid:
            return None
        port = self.session(name).port
        return info.pid if runner_client.healthy("127.0.0.1", port, timeout=1.0) else None

    def monitor(self) -> ProcessInfo | None:
        return self.sup.process_info(MONITOR_PROGRAM)

    def monitor_proc(self) -> ProcessInfo:
        """monitor() once supervisord must have the monitor's program."""
        info = self.monitor()
        assert info is not None, "supervisord has no program for the monitor"
        return info

    def status(self) -> dict[str, Any]:
        """monitor.json: what the running monitor last wrote."""
        return monitor_status.read(self.paths) or {}

    def checks(self) -> int:
        return int(self.status().get("checks", 0))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False
