"""supervisord's XML-RPC interface over its unix socket, with timeouts.

supervisor's own ``SupervisorTransport`` has no timeout: a hung supervisord would hang
every caller forever. The connection (wire.py) sets one on the socket.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from ecosystem.errors import SupervisorError
from ecosystem.states import ProcessState
from ecosystem.supctl.wire import BadAnswer, Connection, Fault, HTTPRefused

# supervisor.xmlrpc.Faults, by value (kept here so callers need not import supervisor).
UNKNOWN_METHOD = 1
BAD_NAME = 10
NO_FILE = 20
NOT_EXECUTABLE = 21
FAILED = 30
ABNORMAL_TERMINATION = 40
SPAWN_ERROR = 50
ALREADY_STARTED = 60
NOT_RUNNING = 70
ALREADY_ADDED = 90
STILL_RUNNING = 91
SHUTDOWN_STATE = 6


_EXITED = re.compile(
    r"exited: (?P<program>\S+) \((?:exit status (?P<status>\d+)|terminated by \w+)"
)
"""supervisord's log line for an exit: `exited: wa-x (exit status 69; not expected)`,
`exited: wa-x (terminated by SIGKILL; not expected)`."""


__all__ = ["Fault", "ProcessInfo", "Supervisor", "SupervisorDown", "parse_compact"]


class SupervisorDown(SupervisorError):
    """Nothing answers on supervisord's socket."""


@dataclass(frozen=True)
class ProcessInfo:
    """What getAllProcessInfo says of one program."""

    name: str
    state: ProcessState
    pid: int | None
    start: int
    now: int
    stop: int
    exitstatus: int
    spawnerr: str
    description: str = ""
    """supervisord's text for people; zapvisor reads none of it, and the compact table
    (``zapvisor.processes``) leaves it empty."""

    @property
    def uptime(self) -> int | None:
        return self.uptime_at(self.now)

    def uptime_at(self, now: int) -> int | None:
        """Seconds it has run at ``now`` (unix time); None when it is not running."""
        if self.state != ProcessState.RUNNING or not self.start:
            return None
        return max(0, now - self.start)

    @classmethod
    def from_rpc(cls, info: dict[str, Any]) -> ProcessInfo:
        return cls(
            name=str(info["name"]),
            state=ProcessState(str(info["statename"])),
            pid=int(info["pid"]) or None,
            start=int(info["start"]),
            now=int(info["now"]),
            stop=int(info["stop"]),
            exitstatus=int(info["exitstatus"]),
            spawnerr=str(info.get("spawnerr") or ""),
            description=str(info.get("description") or ""),
        )


_COMPACT_FIELDS = ["name", "statename", "pid", "start", "stop", "exitstatus", "spawnerr"]


def parse_compact(text: str) -> dict[str, ProcessInfo] | None:
    """``zapvisor.processes``' answer (ecosystem/supctl/rpcext.py) by program name;
    None when it is in a format this version does not know."""
    table = json.loads(text)
    if table.get("format") != 1 or table.get("fields") != _COMPACT_FIELDS:
        return None
    now = int(table["now"])
    return {
        name: ProcessInfo(
            name=name,
            state=ProcessState(statename),
            pid=pid or None,
            start=start,
            now=now,
            stop=stop,
            exitstatus=exitstatus,
            spawnerr=spawnerr,
        )
        for name, statename, pid, start, stop, exitstatus, spawnerr in table["rows"]
    }


class Supervisor:
    """A thread-safe client for one supervisord."""

    compact_retry = 30.0
    """Seconds before asking again for ``zapvisor.processes`` after a supervisord said
    it has none (it may have been restarted with a config that has it since)."""

    def __init__(self, socket_path: Path, username: str, password: str, timeout: float = 30.0):
        self.socket_path = socket_path
        self.credentials = (username, password)
        self.timeout = timeout
        self._lock = threading.Lock()
        self._conn = Connection(str(socket_path), username, password, timeout)
        self.compact_after = 0.0
        """Monotonic time from which zapvisor.processes is asked for again."""
        self.compact: bool | None = None
        """Whether the last process table came from zapvisor.processes (None: none yet)."""

    def call(self, method: str, *args: Any, namespace: str = "supervisor") -> Any:
        """Call ``<namespace>.<method>``; faults stay Faults, transport failures become
        SupervisorDown / SupervisorError with a reason."""
        with self._lock:
            try:
                return self._conn.call(f"{namespace}.{method}", args)
            except Fault:
                raise
            except (FileNotFoundError, ConnectionRefusedError):
                self._conn.close()
                raise SupervisorDown(
                    f"supervisord is not running (no answer on {self.socket_path})"
                ) from None
            except TimeoutError:
                self._conn.close()
                raise SupervisorError(
                    f"supervisord did not answer within {self.timeout:g} s "
                    f"(socket {self.socket_path}); it may be overloaded or hung"
                ) from None
            except HTTPRefused as exc:
                self._conn.close()
                if exc.status == 401:
                    raise SupervisorError(
                        "supervisord refused zapvisor's credentials: another supervisord owns "
                        f"{self.socket_path}; stop it or choose another ZAPVISOR_HOME"
                    ) from None
                raise SupervisorError(f"supervisord answered {exc.status} {exc.reason}") from None
            except BadAnswer as exc:
                self._conn.close()
                raise SupervisorError(f"{exc} (socket {self.socket_path})") from None
            except OSError as exc:
                self._conn.close()
                raise SupervisorDown(
                    f"cannot talk to supervisord on {self.socket_path}: {exc}"
                ) from None

    # -- the calls zapvisor uses ---------------------------------------------------

    def state(self) -> str:
        return str(self.call("getState")["statename"])

    def pid(self) -> int:
        return int(self.call("getPID"))

    def serves_compact(self) -> bool:
        """Whether this supervisord has ``zapvisor.processes`` (it was started with a
        config holding ``[rpcinterface:zapvisor]``)."""
        return "zapvisor.processes" in self.call("listMethods", namespace="system")

    def all_process_info(self) -> dict[str, ProcessInfo]:
        """Every program's state, by name: ``zapvisor.processes`` (one JSON string, a
        tenth of the cost at 200 programs), or getAllProcessInfo from a supervisord
        started before its config had that method."""
        if time.monotonic() >= self.compact_after:
            try:
                table = parse_compact(self.call("processes", namespace="zapvisor"))
            except Fault as fault:
                if fault.faultCode != UNKNOWN_METHOD:
                    raise
                table = None
            if table is not None:
                self.compact = True
                return table
            self.compact_after = time.monotonic() + self.compact_retry
        self.compact = False
        infos = self.call("getAllProcessInfo")
        return {i["name"]: ProcessInfo.from_rpc(i) for i in infos}

    def process_info(self, program: str) -> ProcessInfo | None:
        try:
            return ProcessInfo.from_rpc(self.call("getProcessInfo", program))
        except Fault as fault:
            if fault.faultCode == BAD_NAME:
                return None
            raise

    def reload_config(self) -> tuple[list[str], list[str], list[str]]:
        added, changed, removed = self.call("reloadConfig")[0]
        return list(added), list(changed), list(removed)

    def add_programs(self, sections: str) -> list[str] | None:
        """Add ``sections`` ([program:x] sections the config file now holds) without a
        reread (``zapvisor.addPrograms``); the names added, or None when this
        supervisord did not add them: started before it had the method, or refusing
        them (the caller rereads instead, and reloadConfig says what is wrong)."""
        try:
            return [str(n) for n in self.call("addPrograms", sections, namespace="zapvisor")]
        except Fault:
            return None

    def add_group(self, program: str) -> None:
        self._tolerate(ALREADY_ADDED, "addProcessGroup", program)

    def remove_group(self, program: str) -> None:
        self._tolerate(BAD_NAME, "removeProcessGroup", program)

    def start(self, program: str, wait: bool = False) -> None:
        try:
            self.call("startProcess", program, wait)
        except Fault as fault:
            if fault.faultCode == ALREADY_STARTED:
                return
            raise SupervisorError(
                f"supervisord could not start {program}: {fault.faultString}"
            ) from None

    def stop(self, program: str, wait: bool = True) -> None:
        try:
            self.call("stopProcess", program, wait)
        except Fault as fault:
            if fault.faultCode in (NOT_RUNNING, BAD_NAME):
                return
            raise SupervisorError(
                f"supervisord could not stop {program}: {fault.faultString}"
            ) from None

    def signal(self, program: str, sig: str) -> None:
        self.call("signalProcess", program, sig)

    def tail_stderr(self, program: str, length: int = 4096) -> str:
        try:
            text, _offset, _overflow = self.call("tailProcessStderrLog", program, 0, length)
        except Fault:
            return ""
        return cast(str, text)

    def main_log_tail(self, length: int = 65536) -> str:
        """The last ``length`` bytes of supervisord's own log ("" when it has none)."""
        try:
            return cast(str, self.call("readLog", -length, 0))
        except Fault:
            return ""

    def exit_status(self, info: ProcessInfo) -> int | None:
        """The real exit status of ``info``'s last exit (-1: killed by a signal).

        getProcessInfo reports 0 for a program that exited within `startsecs` (FATAL,
        BACKOFF): supervisord drops the status then, after writing it to its log. So
        for those it is read back from the log; None when the log does not have it."""
        if info.state not in ("FATAL", "BACKOFF"):
            return info.exitstatus
        last = None
        for match in _EXITED.finditer(self.main_log_tail()):
            if match["program"] == info.name:
                last = match
        if last is None:
            return None
        return int(last["status"]) if last["status"] is not None else -1

    def stop_all(self, wait: bool = True) -> None:
        """SIGTERM to every program; ``wait``: answer once all have stopped."""
        self.call("stopAllProcesses", wait)

    def shutdown(self) -> None:
        self.call("shutdown")

    def _tolerate(self, code: int, method: str, *args: Any) -> None:
        try:
            self.call(method, *args)
        except Fault as fault:
            if fault.faultCode != code:
                raise SupervisorError(
                    f"supervisord refused {method}({', '.join(map(str, args))}): "
                    f"{fault.faultString}"
                ) from None


def never_started(infos: dict[str, ProcessInfo]) -> list[str]:
    """Programs this supervisord has never started (STOPPED, start time 0): a create or
    a start killed between adding the program and starting it leaves one so. One an
    operator stopped, even with supervisorctl, has a start time and is left alone."""
    return [p for p, i in infos.items() if i.state == ProcessState.STOPPED and i.start == 0]
