"""Starting many sessions without a storm, after a reboot or a supervisord restart.

One function, two callers: a zapvisor command that finds supervisord down and starts
it (Orchestrator._start_many via apply.sync), and the health monitor when supervisord
came up on its own (systemd at boot) and nobody ran a command. Both hold the same lock,
so whoever is second finds the sessions already started and only waits for them.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from ecosystem.errors import ZapvisorError
from ecosystem.filelock import file_lock
from ecosystem.names import program_name
from ecosystem.paths import StatePaths
from ecosystem.supctl.rpc import Supervisor

log = logging.getLogger("zapvisor.boot")


@dataclass
class StartReport:
    started: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def boot_lock_path(paths: StatePaths) -> Path:
    return paths.home / "boot.lock"


@contextmanager
def boot_lock(paths: StatePaths, timeout: float) -> Iterator[bool]:
    """Held while a batch of sessions starts; yields False when it could not be taken
    within ``timeout`` (the caller then goes ahead: a slow peer must not block it)."""
    with file_lock(boot_lock_path(paths), timeout, poll=0.05) as held:
        yield held


def start_in_waves(
    sup: Supervisor,
    paths: StatePaths,
    targets: Sequence[tuple[str, int]],
    *,
    concurrency: int,
    wait_healthy: Callable[[str, int], None],
    lock_timeout: float,
) -> StartReport:
    """Start the sessions ``targets`` (name, port) ``concurrency`` at a time, each wave
    waiting for its runners' /health (``wait_healthy`` raises ZapvisorError with the
    reason) before the next wave starts. Starting one that already runs is a no-op."""
    report = StartReport()
    if not targets:
        return report
    with boot_lock(paths, lock_timeout) as held:
        if not held:
            log.warning("another start batch holds %s; starting anyway", boot_lock_path(paths))
        for i in range(0, len(targets), max(1, concurrency)):
            wave = targets[i : i + concurrency]
            for name, _port in wave:
                try:
                    sup.start(program_name(name), wait=False)
                except ZapvisorError as exc:
                    report.failed[name] = str(exc)
            for name, port in wave:
                if name in report.failed:
                    continue
                try:
                    wait_healthy(name, port)
                    report.started.append(name)
                except ZapvisorError as exc:
                    report.failed[name] = str(exc)
    return report


def runner_orphans(home: Path, supervisord_pid: int) -> list[int]:
    """Runners of this state dir that no supervisord owns any more: a supervisord that
    was killed (-9) leaves its runners alive, still holding their ports, and the next
    supervisord could not start their sessions."""
    import psutil

    marker = ["-m", "runner", "--home", str(home)]
    found = []
    for proc in psutil.process_iter(["pid", "ppid", "cmdline"]):
        cmd = proc.info.get("cmdline") or []
        if proc.info["ppid"] == supervisord_pid or proc.info["pid"] == os.getpid():
            continue
        if any(cmd[i : i + len(marker)] == marker for i in range(len(cmd))):
            found.append(int(proc.info["pid"]))
    return found


def reap_orphans(home: Path, supervisord_pid: int, grace: float = 10.0) -> list[int]:
    """Stop orphaned runners (TERM, like a normal stop: each keeps its auth), KILL those
    still alive after ``grace`` seconds. Returns their pids."""
    import psutil

    pids = runner_orphans(home, supervisord_pid)
    procs = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            proc.send_signal(signal.SIGTERM)
            procs.append(proc)
        except psutil.Error:
            continue
    if procs:
        log.warning("stopping %d orphaned runner(s): %s", len(procs), pids)
        _gone, alive = psutil.wait_procs(procs, timeout=grace)
        for proc in alive:
            with suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(alive, timeout=5)
    return pids
