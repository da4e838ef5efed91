"""The app as an operator runs it: `zapvisor` in its own process on a pseudo-terminal
(pexpect), so every wait has a timeout that fires with what was drawn so far."""

from __future__ import annotations

import sys

import pexpect

from tests.conftest import Env


def spawn_app(env: Env, columns: int = 80, rows: int = 24) -> pexpect.spawn[bytes]:
    """`zapvisor` with no command on a ``columns``x``rows`` terminal, in its own session."""
    env.home.mkdir(parents=True, mode=0o700, exist_ok=True)
    return pexpect.spawn(
        sys.executable,
        ["-m", "tui.cli.main"],
        env=dict(env.vars, TERM="xterm-256color"),
        cwd=str(env.home),
        dimensions=(rows, columns),
        timeout=60,
    )


def drawn(child: pexpect.spawn[bytes], text: bytes, timeout: float) -> None:
    """Wait until the app has drawn ``text``; on a timeout or an exit, fail with the
    end of the screen output (pexpect's own timeout fires)."""
    try:
        child.expect_exact(text, timeout=timeout)
    except (pexpect.TIMEOUT, pexpect.EOF) as exc:
        tail = (child.before or b"")[-600:]
        raise AssertionError(
            f"{text!r} not drawn within {timeout} s ({type(exc).__name__}): {tail!r}"
        ) from None


def quit_status(child: pexpect.spawn[bytes], timeout: float) -> tuple[int | None, bytes]:
    """Wait for the app to exit: (its exit status, what it drew since the last match);
    fails when it is still running after ``timeout``."""
    try:
        child.expect(pexpect.EOF, timeout=timeout)
    except pexpect.TIMEOUT:
        raise AssertionError(
            f"still running {timeout} s later: {(child.before or b'')[-600:]!r}"
        ) from None
    rest = child.before or b""
    child.close()
    return child.exitstatus, rest
