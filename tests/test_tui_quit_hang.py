"""ctrl+q leaves the app at once even while a worker is stuck in the store: the operator
whose database stopped answering must not have to kill the terminal.

Everything is real: the app runs as `zapvisor` in its own process on a pseudo-terminal
(pexpect),
over a real PostgreSQL that the test freezes with SIGSTOP (the TCP connection stays
open and nothing answers, as with a wedged server or a dead link that still ACKs)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Env, PgCluster
from tests.terminal import drawn, quit_status, spawn_app

pytestmark = pytest.mark.e2e

QUIT_DEADLINE = 10.0
"""Generous for a loaded machine; before the fix the app never left while the store hung."""


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
    postmaster = pg_cluster.server.pid
    assert postmaster is not None
    app = spawn_app(env, columns=100)
    frozen: list[int] = []
    try:
        drawn(app, b"no sessions yet", 60)
        os.kill(postmaster, signal.SIGSTOP)  # first, so that no new backend starts
        frozen = _server_pids(postmaster)
        _signal_all(frozen, signal.SIGSTOP)
        drawn(app, b"has not answered", 30)  # a refresh is stuck in the store

        app.sendcontrol("q")
        asked = time.monotonic()
        status, after_quit = quit_status(app, QUIT_DEADLINE)
        took = time.monotonic() - asked
        assert status == 0, after_quit[-800:]
        assert b"\x1b[?1049l" in after_quit, "the alternate screen was left"
        assert b"\x1b[?25h" in after_quit, "the cursor was shown again"
        assert b"Traceback" not in after_quit
        print(f"left {took:.2f} s after ctrl+q with the store frozen")
    finally:
        _signal_all(frozen, signal.SIGCONT)
        app.close(force=True)
