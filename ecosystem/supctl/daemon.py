"""supervisord itself: its credentials, starting it, and shutting it down cleanly."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from ecosystem.errors import SupervisorError
from ecosystem.paths import StatePaths, write_private
from ecosystem.states import PROCESS_UP, SUPERVISORD_RUNNING
from ecosystem.supctl.rpc import Supervisor, SupervisorDown

# Starting supervisord (subprocess), making credentials (secrets) and shutting down (the
# monitor's name, from render) are imported where they happen: reading state through
# an up supervisord, which is every read command, needs none of them.

# Only these reach supervisord (and through it every runner): a shell's stray
# variables must not leak into sessions, and settings reach runners via runtime.env.
_PASS_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR", "PYTHONPATH")


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


def credentials(paths: StatePaths) -> Credentials:
    """The socket's username/password, generated once and kept in a 0600 file."""
    missing = False
    try:
        data = json.loads(paths.credentials.read_text("utf-8"))
        return Credentials(str(data["username"]), str(data["password"]))
    except FileNotFoundError:
        missing = True
    except (ValueError, KeyError, TypeError):
        # A corrupt file: new credentials take effect when supervisord next starts.
        pass
    import secrets

    creds = Credentials("zapvisor", secrets.token_hex(24))
    try:
        # When two threads or processes get here at once, the first file written wins
        # and the others use it (else a client could keep credentials nobody uses).
        write_private(paths.credentials, json.dumps(creds.__dict__), replace=not missing)
    except FileExistsError:
        return credentials(paths)
    return creds


def client(paths: StatePaths, timeout: float = 30.0) -> Supervisor:
    creds = credentials(paths)
    return Supervisor(paths.socket, creds.username, creds.password, timeout=timeout)


def is_up(sup: Supervisor) -> bool:
    try:
        return sup.state() == SUPERVISORD_RUNNING
    except SupervisorDown:
        return False


def start(paths: StatePaths, sup: Supervisor, timeout: float = 20.0) -> int:
    """Start supervisord on ``paths.conf`` and wait until its socket answers.

    Returns supervisord's pid. Raises SupervisorError with the reason from its log
    when it does not come up.
    """
    import subprocess

    sock = paths.socket
    if (sock.exists() or sock.is_symlink()) and not sock.is_socket():
        raise SupervisorError(
            f"{sock} exists and is not a socket, so supervisord cannot listen there: move it away"
        )
    env = {k: v for k in _PASS_ENV if (v := os.environ.get(k)) is not None}
    log_mark = _log_size(paths.supervisord_log)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "supervisor.supervisord", "-c", str(paths.conf)],
            env=env,
            cwd=paths.home,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SupervisorError(f"cannot run supervisord: {exc}") from None
    if proc.returncode != 0:
        reason = (proc.stderr or proc.stdout).strip().splitlines()
        raise SupervisorError(
            "supervisord would not start: " + (reason[-1] if reason else f"exit {proc.returncode}")
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if sup.state() == SUPERVISORD_RUNNING:
                return sup.pid()
        except SupervisorDown:
            pass
        time.sleep(0.05)
    why = _log_tail(paths.supervisord_log, log_mark)
    raise SupervisorError(
        f"supervisord did not answer on {paths.socket} within {timeout:g} s"
        + (f": {why}" if why else f"; see {paths.supervisord_log}")
    )


def exec_foreground(paths: StatePaths) -> NoReturn:
    """Become supervisord, in the foreground (`-n`), for a service manager (systemd)
    that supervises it; same environment as :func:`start` gives it."""
    env = {k: v for k in _PASS_ENV if (v := os.environ.get(k)) is not None}
    os.chdir(paths.home)
    # supervisord applies its umask= only when it daemonizes: in the foreground the log
    # files it creates would get the service manager's 022
    os.umask(0o077)
    sys.stdout.flush()
    sys.stderr.flush()
    argv = [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(paths.conf)]
    os.execve(sys.executable, argv, env)  # noqa: S606 - fixed argv, no shell


def shutdown(paths: StatePaths, sup: Supervisor, timeout: float = 60.0) -> None:
    """Stop the health monitor, then every program (SIGTERM to all at once), then
    supervisord.

    supervisord's own shutdown stops one program per loop second, so at 200 sessions
    a bare shutdown takes minutes. The monitor goes first: it would otherwise read the
    store for each of the hundreds of process events the stop sends it, while the
    runners need the machine to exit.

    The programs are not stopped with ``stopAllProcesses(wait=True)``: supervisord
    answers a waiting call when its loop next wakes after the last exit, and with
    nothing else to do it sleeps a whole second in poll() (a child's exit signal does
    not wake it). Asking for the process table every STOP_POLL seconds instead both
    sees the last exit sooner and wakes supervisord to reap the exited runners.
    """
    from ecosystem.supctl.render import MONITOR_PROGRAM

    # Stopping hundreds of runners can take longer than a normal call's timeout.
    slow = Supervisor(sup.socket_path, *sup.credentials, timeout=timeout)
    deadline = time.monotonic() + timeout
    try:
        pid = slow.pid()
        slow.stop(MONITOR_PROGRAM)
        slow.stop_all(wait=False)
        wait_all_stopped(slow, deadline)
        slow.shutdown()
    except SupervisorDown:
        return
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.02)
    raise SupervisorError(f"supervisord (pid {pid}) did not exit within {timeout:g} s")


STOP_POLL = 0.05
"""Seconds between two looks at the process table while every program stops."""


def wait_all_stopped(sup: Supervisor, deadline: float) -> None:
    """Until no program has a process (or ``deadline``: supervisord's own shutdown then
    finishes the job, its stopwaitsecs and SIGKILL included)."""
    while time.monotonic() < deadline:
        if not any(i.state in PROCESS_UP for i in sup.all_process_info().values()):
            return
        time.sleep(STOP_POLL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False


def _log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _log_tail(path: Path, since: int) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(since)
            lines = fh.read().decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        if "CRIT" in line or "ERROR" in line:
            return line.split(" ", 2)[-1]
    return lines[-1] if lines else ""
