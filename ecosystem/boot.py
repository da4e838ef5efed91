"""Starting sessions without a storm: one at a create, hundreds after a reboot.

One function, three callers: a command that starts a session (create, start, restart),
a command that finds supervisord down and starts it (apply.sync), and the health
monitor when supervisord came up on its own (systemd at boot) and nobody ran a command.
A batch holds the boot lock, so whoever is second finds the sessions already started
and only waits for them.

How many runners start at once is decided as they come up (``Pace``), not in fixed
waves: each one's time from start to its first ``/health`` answer says how busy the
machine is. While runners come up about as fast as the fastest did and the host's run
queue has room, one more may start with each that answered; when they slow down (the
CPU is shared with the other starts, or with anything else on the host) fewer do. A
wave of fixed size either leaves cores idle behind its slowest runner or starts more
than the host can take.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ecosystem.errors import ZapvisorError
from ecosystem.filelock import file_lock
from ecosystem.names import program_name, runner_session
from ecosystem.paths import StatePaths, write_private
from ecosystem.states import STOPPED_STATES
from ecosystem.supctl.rpc import Supervisor

log = logging.getLogger("zapvisor.boot")

FIRST_POLL = 0.003
"""Seconds before the first look at a runner just started; the gap then grows."""
MAX_POLL = 0.025
ONE_POLL = 0.005
"""The widest gap while one runner starts (a create, a restart): a look at a port not
listening yet costs ~0.06 ms, and each millisecond of gap is one the operator waits."""
CHECK_PROCESS_AFTER = 0.5
"""Seconds after which a runner not answering yet is looked up in supervisord (did it
exit?), then again every as many seconds."""
SLOW = 2.0
"""A start taking this many times the recent ones (their median) means the host got
busier."""
RECENT = 8
"""How many of the last starts make "the recent ones"."""
PROGRESS_EVERY = 0.5


@dataclass
class StartReport:
    started: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


@dataclass
class BootProgress:
    """How far a batch of starts is (`boot.json` in the state dir while it runs)."""

    total: int
    up: int = 0
    failed: int = 0
    starting: int = 0
    limit: int = 0
    pid: int = field(default_factory=os.getpid)
    began: float = field(default_factory=time.time)


def boot_lock_path(paths: StatePaths) -> Path:
    return paths.home / "boot.lock"


def progress_path(paths: StatePaths) -> Path:
    return paths.home / "boot.json"


@contextmanager
def boot_lock(paths: StatePaths, timeout: float) -> Iterator[bool]:
    """Held while a batch of sessions starts; yields False when it could not be taken
    within ``timeout`` (the caller then goes ahead: a slow peer must not block it)."""
    with file_lock(boot_lock_path(paths), timeout, poll=0.05) as held:
        yield held


def read_progress(paths: StatePaths) -> BootProgress | None:
    """The batch of starts running now on this state dir, None when there is none."""
    try:
        data = json.loads(progress_path(paths).read_text("utf-8"))
        found = BootProgress(**data)
        os.kill(found.pid, 0)  # a batch whose process died is not running
    except (OSError, ValueError, TypeError):
        return None
    return found


def _run_queue() -> int:
    """Processes runnable on the host right now (not an average: a boot reacts fast)."""
    try:
        with open("/proc/loadavg", encoding="ascii") as fh:
            return int(fh.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return 0


class Pace:
    """How many runners may be starting at once, from how fast they come up and how
    busy the host is.

    One more may start with each runner that came up about as fast as the recent ones
    did, while the host's run queue stays within a few cores of what it was before the
    batch (what else runs there keeps its share); a start much slower than the recent
    ones takes a quarter off. Recent, not the fastest ever: on a host whose other load
    comes and goes, one lucky start would otherwise make every later one "slow" and
    hold the batch at one start at a time."""

    def __init__(
        self, ceiling: int, cpus: int | None = None, run_queue: Callable[[], int] = _run_queue
    ) -> None:
        self.ceiling = max(1, ceiling)
        self.cpus = cpus or os.cpu_count() or 1
        self.run_queue = run_queue
        self.baseline = run_queue()
        self.limit = float(min(self.ceiling, 2))
        self.recent: deque[float] = deque(maxlen=RECENT)

    @property
    def allowed(self) -> int:
        return max(1, int(self.limit))

    def came_up(self, seconds: float) -> None:
        """A runner answered ``seconds`` after its start."""
        # the middle one (not statistics.median: its imports cost every command)
        typical = sorted(self.recent)[len(self.recent) // 2] if self.recent else seconds
        self.recent.append(seconds)
        if seconds > SLOW * typical:
            self.limit = max(1.0, self.limit * 0.75)
        elif self.run_queue() <= self.baseline + 2 * self.cpus:
            self.limit = min(float(self.ceiling), self.limit + 1)


def start_many(
    sup: Supervisor,
    paths: StatePaths,
    targets: Sequence[tuple[str, int]],
    *,
    bind: str,
    timeout: float,
    ceiling: int,
    lock_timeout: float,
    why: Callable[[str], str] | None = None,
) -> StartReport:
    """Start the sessions ``targets`` (name, port) and wait for each one's ``/health``,
    at most ``ceiling`` starting at once (fewer while they come up slowly). A runner
    that exits, or does not answer within ``timeout`` seconds, is reported in
    ``failed`` with ``why(name)``. Starting one that already runs is a no-op."""
    report = StartReport()
    batch = _Batch(sup, paths, bind, timeout, Pace(ceiling), why, report, len(targets))
    if len(targets) <= 1:  # one session is no batch: it never waits behind one
        batch.run(deque(targets))
        return report
    with boot_lock(paths, lock_timeout) as held:
        if not held:
            log.warning("another start batch holds %s; starting anyway", boot_lock_path(paths))
        try:
            batch.run(deque(targets))
        finally:
            progress_path(paths).unlink(missing_ok=True)
    return report


class _Batch:
    def __init__(
        self,
        sup: Supervisor,
        paths: StatePaths,
        bind: str,
        timeout: float,
        pace: Pace,
        why: Callable[[str], str] | None,
        report: StartReport,
        total: int,
    ) -> None:
        self.sup = sup
        self.paths = paths
        self.bind = bind
        self.timeout = timeout
        self.pace = pace
        self.why = why
        self.report = report
        self.progress = BootProgress(total) if total > 1 else None
        self.written = 0.0
        self.starting: dict[str, tuple[int, float, float]] = {}
        """name → (port, when it was started, when to look it up in supervisord)."""

    def run(self, queue: deque[tuple[str, int]]) -> None:
        from ecosystem.health.probe import OK, probe_many  # h11: only when starting

        poll = FIRST_POLL
        while queue or self.starting:
            self._start_more(queue)
            if not self.starting:
                continue
            time.sleep(poll)
            answers = probe_many(self.bind, {n: s[0] for n, s in self.starting.items()}, 0.25)
            now = time.monotonic()
            up = [n for n, answer in answers.items() if answer == OK]
            for name in up:
                _port, began, _look = self.starting.pop(name)
                self.pace.came_up(now - began)
                self.report.started.append(name)
            self._look_for_failures(now)
            self._say(now)
            widest = ONE_POLL if len(self.starting) <= 1 else MAX_POLL
            poll = FIRST_POLL if up else min(widest, poll * 1.5)

    def _start_more(self, queue: deque[tuple[str, int]]) -> None:
        while queue and len(self.starting) < self.pace.allowed:
            name, port = queue.popleft()
            try:
                self.sup.start(program_name(name), wait=False)
            except ZapvisorError as exc:
                self.report.failed[name] = str(exc)
                continue
            now = time.monotonic()
            self.starting[name] = (port, now, now + CHECK_PROCESS_AFTER)

    def _look_for_failures(self, now: float) -> None:
        for name, (port, began, look) in list(self.starting.items()):
            if now - began > self.timeout:
                self._fail(name, f"did not answer /health on port {port} within {self.timeout:g} s")
            elif now >= look:
                info = self.sup.process_info(program_name(name))
                if info is not None and info.state in STOPPED_STATES:
                    self._fail(name, f"is {info.state}")
                else:
                    self.starting[name] = (port, began, now + CHECK_PROCESS_AFTER)

    def _fail(self, name: str, what: str) -> None:
        del self.starting[name]
        reason = f"{name}'s runner {what}"
        if self.why is not None:
            reason += f": {self.why(name)}"
        self.report.failed[name] = reason

    def _say(self, now: float) -> None:
        p = self.progress
        if p is None or now - self.written < PROGRESS_EVERY:
            return
        self.written = now
        p.up, p.failed = len(self.report.started), len(self.report.failed)
        p.starting, p.limit = len(self.starting), self.pace.allowed
        with suppress(OSError):
            write_private(progress_path(self.paths), json.dumps(asdict(p)))


def runner_orphans(home: Path, supervisord_pid: int) -> list[int]:
    """Runners of this state dir that no supervisord owns any more: a supervisord that
    was killed (-9) leaves its runners alive, still holding their ports, and the next
    supervisord could not start their sessions."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "ppid", "cmdline"]):
        if proc.info["ppid"] == supervisord_pid or proc.info["pid"] == os.getpid():
            continue
        if runner_session(proc.info.get("cmdline") or [], str(home)) is not None:
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
