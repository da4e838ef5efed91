"""`zapvisor qr` as an operator sees it on a terminal (a real pty of a given size): it
says when the terminal is too short for the code and what to do, keeps its caption on
one line, prints the compact code on request (decoded here as the terminal draws it),
and says what it waits for with --wait."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import pytest

from tests.conftest import Env
from tests.qrdecode import decode_cells

pytestmark = pytest.mark.e2e
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def on_terminal(env: Env, *args: str, size: tuple[int, int] = (80, 24)) -> tuple[int, str]:
    """Run `zapvisor ARGS` with stdout and stderr on a pty of ``size`` (columns, rows)."""
    master, slave = pty.openpty()
    cols, rows = size
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    environ = {k: v for k, v in env.vars.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli.main", *args],
        env=environ,
        cwd=env.home.parent,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    out = b""
    with contextlib.suppress(OSError):  # EIO once the child closed its end
        while chunk := os.read(master, 65536):
            out += chunk
    os.close(master)
    return proc.wait(timeout=60), out.decode("utf-8", "replace").replace("\r\n", "\n")


def test_qr_on_a_short_terminal_says_so_and_the_compact_code_decodes(zv: Env) -> None:
    zv.cli("create", "alpha", "--connector", "sim")
    payload = zv.json("qr", "alpha", "--wait", "20")["qr_payload"]

    code, out = on_terminal(zv, "qr", "alpha")
    assert code == 0
    plain = _ANSI.sub("", out)
    assert "this terminal is 80x24; the QR above needs 61x32" in plain
    assert "--compact" in plain and "--png FILE" in plain
    assert all(len(line) <= 80 for line in plain.splitlines()), "no line wraps"

    # the sim rotates its code as WhatsApp does: the one shown is the one before or after
    code, out = on_terminal(zv, "qr", "alpha", "--compact")
    after = zv.json("qr", "alpha")["qr_payload"]
    assert code == 0
    plain = _ANSI.sub("", out)
    assert "needs" not in plain and "--no-compact" in plain  # how to switch back
    assert decode_cells("\n".join(plain.splitlines()[:21])) in (payload, after)
    assert len(plain.splitlines()) <= 24

    piped = zv.cli("qr", "alpha", "--compact").stdout  # no terminal: no colours, no notes
    assert "\x1b[" not in piped
    assert decode_cells(piped) in (after, zv.json("qr", "alpha")["qr_payload"])


def test_qr_wait_says_what_it_waits_for(zv: Env) -> None:
    zv.cli("create", "beta", "--connector", "sim", "--stopped")
    code, out = on_terminal(zv, "qr", "beta", "--wait", "1")
    assert code == 69
    assert "waiting for beta's QR code (status " in out
    assert "beta has no QR code after 1 s" in out
