"""The three hosts of tests/test_fleet_e2e.py (control, vps-1, vps-2) as its tests
see them, and the helpers they share: a command's refusal, a `logs -f` followed, the
home screen's rows, a process's owner."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import IO, Any

import psutil

from ecosystem.fleet.control import control_side
from ecosystem.orchestrator import Orchestrator
from tests.conftest import Env
from tests.fleet_fixtures import Fleet, RemoteHost


@dataclass
class Three:
    fleet: Fleet
    one: RemoteHost
    two: RemoteHost
    added: dict[str, dict[str, Any]]
    """What `hosts add --trust --json` printed for each remote host."""

    @property
    def control(self) -> Env:
        return self.fleet.control

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.control.cli(*args, check=check, timeout=240)

    def json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)

    def door(self) -> Orchestrator:
        """The control side's door, as `zapvisor` and the terminal app open it."""
        settings = self.control.settings(
            host_id="control", database_url=self.fleet.store["ZAPVISOR_DATABASE_URL"]
        )
        return control_side(settings)


def owner(pid: int) -> str | None:
    """The user a running process runs as (None once it has ended)."""
    try:
        proc = psutil.Process(pid)
        return None if proc.status() == psutil.STATUS_ZOMBIE else proc.username()
    except psutil.NoSuchProcess:
        return None


def refused(three: Three, code: int, *args: str) -> str:
    """Run a command that must fail with ``code``; its one line of stderr."""
    proc = three.cli(*args, check=False)
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zapvisor: error: "), proc.stderr
    return lines[0]


def stream_lines(stream: IO[str], into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line)


class following:
    """`zapvisor logs -f --raw NAME` running, its lines collected as they come."""

    def __init__(self, env: Env, name: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tui.cli.main", "logs", "-f", "--raw", name],
            env=env.vars,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        assert self.proc.stdout is not None
        threading.Thread(
            target=stream_lines, args=(self.proc.stdout, self.lines), daemon=True
        ).start()

    def __enter__(self) -> queue.Queue[str]:
        return self.lines

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def seen(lines: queue.Queue[str], text: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if text in lines.get(timeout=max(0.0, deadline - time.monotonic())):
                return True
        except queue.Empty:
            return False
    return False


def home_rows(text: str) -> dict[str, str]:
    """Session name → the word after it, on the home screen's rows."""
    out = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) > 1 and words[0].startswith(("op-", "tui-", "kill-")):
            out[words[0]] = words[1]
    return out


def made_on(orch: Orchestrator, name: str) -> str | None:
    try:
        return orch.store.get_session(name).host
    except Exception:
        return None
