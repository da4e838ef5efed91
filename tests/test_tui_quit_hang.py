"""ctrl+q leaves the app at once even while a worker is stuck in the store: the operator
whose database stopped answering must not have to kill the terminal.

Everything is real: the app runs as `zapvisor` in its own process on a pseudo-terminal,
over a real PostgreSQL that the test freezes with SIGSTOP (the TCP connection stays
open and nothing answers, as with a wedged server or a dead link that still ACKs)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Env, PgCluster

pytestmark = pytest.mark.e2e

QUIT_DEADLINE = 10.0
"""Generous for a loaded machine; before the fix the app never left while the store hung."""


class Terminal:
    """The master side of the app's pty, with everything it drew so far."""

    def __init__(self, fd: int, proc: subprocess.Popen[bytes]) -> None:
        self.fd = fd
        self.proc = proc
        self.seen = b""

    def pump(self, timeout: float) -> None:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if ready:
            with contextlib.suppress(OSError):  # EIO: the app closed its side
                self.seen += os.read(self.fd, 65536)

    def wait_for(self, needle: bytes, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.seen:
            if self.proc.poll() is not None:
                raise AssertionError(f"the app exited {self.proc.returncode}: {self.seen[-800:]!r}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not drawn in {timeout} s: {self.seen[-400:]!r}")
            self.pump(0.2)


def _server_pids(postmaster: int) -> list[int]:
    """The postmaster and its children (backends call setsid(), so no process group
    holds them all)."""
    pids = [postmaster]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == postmaster:
                pids.append(int(stat.parent.name))
    return pids


def _signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def test_ctrl_q_quits_at_once_while_the_store_hangs(
    pg_cluster: PgCluster, pg_dsn: str, make_env: Callable[..., Env]
) -> None:
    env = make_env(ZAPVISOR_DATABASE_URL=pg_dsn)
    env.home.mkdir(parents=True, mode=0o700)
    postmaster = pg_cluster.server.pid
    assert postmaster is not None
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli.main"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=dict(env.vars, TERM="xterm-256color"),
        cwd=env.home,
        start_new_session=True,
    )
    os.close(slave)
    term = Terminal(master, proc)
    frozen: list[int] = []
    try:
        term.wait_for(b"no sessions yet", 60)
        os.kill(postmaster, signal.SIGSTOP)  # first, so that no new backend starts
        frozen = _server_pids(postmaster)
        _signal_all(frozen, signal.SIGSTOP)
        term.wait_for(b"has not answered", 30)  # a refresh is stuck in the store

        os.write(master, b"\x11")  # ctrl+q
        asked = time.monotonic()
        quit_at = asked + QUIT_DEADLINE
        while proc.poll() is None and time.monotonic() < quit_at:
            term.pump(0.05)
        took = time.monotonic() - asked
        assert proc.poll() is not None, f"still running {QUIT_DEADLINE} s after ctrl+q"
        term.pump(0.5)  # the last bytes it wrote
        assert proc.returncode == 0, term.seen[-800:]
        after_quit = term.seen.rsplit(b"has not answered", 1)[-1]
        assert b"\x1b[?1049l" in after_quit, "the alternate screen was left"
        assert b"\x1b[?25h" in after_quit, "the cursor was shown again"
        assert b"Traceback" not in term.seen
        print(f"left {took:.2f} s after ctrl+q with the store frozen")
    finally:
        _signal_all(frozen, signal.SIGCONT)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
