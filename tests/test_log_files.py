"""Log files hold message contents and phone numbers: private (0600), and gone with a
purged session, so a session created again under its name starts a log of its own."""

from __future__ import annotations

import stat

import pytest

from tests.conftest import Env, wait_for

pytestmark = pytest.mark.e2e


def _modes(env: Env) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in (env.home / "logs").iterdir()}


def test_log_files_are_private_and_purge_removes_them(zv: Env) -> None:
    zv.cli("create", "alpha", "--connector", "sim")
    log = zv.home / "logs" / "wa-alpha.log"
    wait_for(lambda: log.exists() and '"listening"' in log.read_text())
    modes = _modes(zv)
    assert {"supervisord.log", "wa-alpha.log", "wa-alpha.err.log"} <= set(modes)
    assert all(m & 0o077 == 0 for m in modes.values()), modes
    (zv.home / "logs" / "wa-alpha.log.1").write_text("a rotated old line\n")

    zv.cli("delete", "alpha", "--yes")  # a plain delete keeps them, with the auth
    assert log.exists()
    zv.cli("create", "alpha", "--connector", "sim", "--stopped")
    zv.cli("delete", "alpha", "--yes", "--purge")
    left = sorted(p.name for p in (zv.home / "logs").iterdir() if "alpha" in p.name)
    assert left == [], left

    zv.cli("create", "alpha", "--connector", "sim")
    wait_for(lambda: log.exists() and '"listening"' in log.read_text())
    assert log.read_text().count('"listening"') == 1, "the old session's lines are gone"


def test_log_files_an_older_supervisord_left_readable_are_made_private(zv: Env) -> None:
    """A supervisord started before its config said umask=077 keeps creating 0644
    files until it restarts: the next command makes them private."""
    zv.cli("list")
    loose = zv.home / "logs" / "wa-old.log"
    loose.write_text("x\n")
    loose.chmod(0o644)
    zv.cli("list")
    assert stat.S_IMODE(loose.stat().st_mode) == 0o600
