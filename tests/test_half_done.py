"""Operations that fail or are killed half-way: a delete the store refuses changes
nothing; a create killed at any step is finished or undone by the next `apply` and
reported by `doctor` meanwhile. Real supervisord, real runners, a real read-only file
(`chattr +i`) and real SIGKILLs."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Env
from tests.test_bad_input import one_line_error
from tests.test_session_api import call

pytestmark = pytest.mark.e2e


@contextlib.contextmanager
def immutable(path: Path) -> Iterator[None]:
    """The file cannot be written, even by root (what a full or read-only disk, or an
    operator's `chattr +i`, does to the store)."""
    proc = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"chattr +i does not work here: {proc.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_delete_the_store_refuses_changes_nothing(zv: Env) -> None:
    zv.cli("create", "alpha", "--connector", "sim")
    before = zv.json("show", "alpha")
    token = zv.home / "secrets" / "alpha.token"
    assert before["process_state"] in ("STARTING", "RUNNING") and token.exists()
    with immutable(zv.home / "zapvisor.db"):
        proc = zv.cli("delete", "alpha", "--yes", check=False)
        assert proc.returncode == 69, proc.stderr
        assert "sqlite store" in one_line_error(proc.stderr)
        assert call(before["port"], "/health", None)[1]["pid"] == before["pid"]
    after = zv.json("show", "alpha")
    assert after["pid"] == before["pid"] and after["process_state"] == "RUNNING"
    assert after["desired_state"] == "running" and token.exists()

    zv.cli("delete", "alpha", "--yes")
    assert zv.json("list") == [] and not token.exists()
    status = zv.cli("ctl", "status").stdout
    assert "wa-alpha" not in status
