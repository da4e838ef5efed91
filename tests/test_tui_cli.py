"""`zapvisor` with no command: the app on a terminal, help and a non-zero exit without."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import time
from typing import Any

import pytest

from tests.conftest import Env

pytestmark = pytest.mark.e2e


def test_without_a_terminal_it_prints_help_and_exits_2(zv: Env) -> None:
    proc = zv.cli(check=False)
    assert proc.returncode == 2
    assert "usage: zapvisor" in proc.stderr
    assert "no command given (the app needs a terminal)" in proc.stderr


def _read_until(fd: int, needle: bytes, timeout: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        seen += chunk
        if needle in seen:
            return seen
    raise AssertionError(f"{needle!r} not drawn within {timeout} s; got {seen[-500:]!r}")


def test_on_a_terminal_it_opens_the_app_and_ctrl_q_quits(make_env: Any) -> None:
    env: Env = make_env()
    env.home.mkdir(parents=True, mode=0o700)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
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
    try:
        _read_until(master, b"supervisord", 60)  # the host header is drawn
        _read_until(master, b"no sessions yet", 30)
        os.write(master, b"\x11")  # ctrl+q
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert env.supervisord_pid(), "opening the app starts supervisord like any command"
