"""`zapvisor` with no command: the app on a terminal, help and a non-zero exit without."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Env, wait_for
from tests.terminal import drawn, quit_status, spawn_app

pytestmark = pytest.mark.e2e


def test_without_a_terminal_it_prints_help_and_exits_2(zv: Env) -> None:
    proc = zv.cli(check=False)
    assert proc.returncode == 2
    assert "usage: zapvisor" in proc.stderr
    assert "no command given (the app needs a terminal)" in proc.stderr


def test_on_a_terminal_it_opens_the_app_and_ctrl_q_quits(make_env: Any) -> None:
    env: Env = make_env()
    app = spawn_app(env)
    try:
        drawn(app, b"supervisord", 60)  # the host header is drawn
        drawn(app, b"no sessions yet", 30)
        # the app starts it in a worker: on a busy host after its first screen
        wait_for(env.supervisord_pid, 30)
        app.sendcontrol("q")
        status, _ = quit_status(app, 30)
        assert status == 0
    finally:
        app.close(force=True)
    assert env.supervisord_pid(), "opening the app starts supervisord like any command"


def test_the_failover_commands_offer_every_auth_kind() -> None:
    """`failover --auth` lists the kinds without importing the core to build the parser."""
    from ecosystem.lease import AuthKind
    from tui.cli.failover import AUTH_KINDS

    assert set(AUTH_KINDS) == {str(k) for k in AuthKind}
