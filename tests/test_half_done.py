"""Operations that fail or are killed half-way: a delete the store refuses changes
nothing; a create killed at any step is finished or undone by the next `apply` and
reported by `doctor` meanwhile. Real supervisord, real runners, a real read-only file
(`chattr +i`) and real SIGKILLs."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ecosystem.errors import RunnerError
from tests.conftest import Env, wait_for
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
    # RUNNING once supervisord's startsecs pass: compared below, it must not be mid-way
    before = wait_for(lambda: (s := zv.json("show", "alpha"))["process_state"] == "RUNNING" and s)
    token = zv.home / "secrets" / "alpha.token"
    assert token.exists()
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


# A create that SIGKILLs itself at one instant (a real process, a real supervisord):
# right after the store insert, or after supervisord added the program but before it
# was started.
_KILLED_CREATE = """
import os, signal, sys
from ecosystem.models import NewSession
from ecosystem.orchestrator import Orchestrator
from ecosystem.settings import load_settings
from ecosystem.supctl.rpc import Supervisor

step, name = sys.argv[1:]
orch = Orchestrator(load_settings())
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
if step == "after-insert":
    insert = orch.store.create_session
    def insert_then_die(*args, **kwargs):
        insert(*args, **kwargs)
        die()
    orch.store.create_session = insert_then_die
else:
    Supervisor.start = die
orch.create(NewSession(name=name, connector="sim"))
"""


def killed_create(env: Env, step: str, name: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_CREATE, step, name],
        env=env.vars,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def doctor(env: Env) -> dict[str, dict[str, str]]:
    data = json.loads(env.cli("doctor", "--json", check=False).stdout)
    return {c["name"]: c for c in data["checks"]}


@pytest.mark.parametrize(
    ("step", "said"),
    [
        ("after-insert", "no program in supervisord"),
        ("before-start", "meant to run but never started"),
    ],
)
def test_a_create_killed_half_way_is_finished_by_the_next_apply(
    zv: Env, step: str, said: str
) -> None:
    zv.cli("list")  # supervisord runs: the next apply will not start it (and so boot)
    killed_create(zv, step, "half")
    found = doctor(zv)["session half"]
    assert found["level"] == "fail" and said in found["detail"], found
    assert "`zapvisor apply`" in found["fix"]

    zv.cli("apply")
    shown = wait_for(lambda: (s := zv.json("show", "half"))["process_state"] == "RUNNING" and s)
    assert shown["desired_state"] == "running"
    token = zv.cli("token", "half").stdout.strip()
    assert call(shown["port"], "/status", token)[0] == 200, "its token works"
    assert "session half" not in doctor(zv)
    (zv.home / "secrets" / "half.token").unlink()  # e.g. moved here without its files
    found = doctor(zv)["session half"]
    assert "no API token on this host" in found["detail"]
    assert found["fix"] == "`zapvisor token half --rotate` makes a new one"


def test_a_runner_started_on_a_read_only_store_reports_once_it_is_writable(zv: Env) -> None:
    """SQLite opens a file it cannot write read-only and keeps it so: the runner's
    status writes failed for ever after the file was writable again, the store saying
    `disconnected` while /health said `connected`."""
    zv.cli("create", "alpha", "--connector", "sim")
    zv.cli("qr", "alpha", "--wait", "20")
    zv.cli("sim-scan", "alpha")
    port = zv.json("show", "alpha")["port"]
    with immutable(zv.home / "zapvisor.db"):
        old = call(port, "/health", None)[1]["pid"]
        zv.cli("ctl", "restart", "wa-alpha")  # supervisorctl: no store write of ours

        def up_again() -> Any:
            try:
                body = call(port, "/health", None)[1]
            except RunnerError:
                return None
            return body["pid"] != old and body["status"] == "connected" and body

        new = wait_for(up_again, timeout=30)["pid"]
    shown = wait_for(
        lambda: (s := zv.json("show", "alpha"))["status"] == "connected" and s, timeout=60
    )
    assert shown["pid"] == new
    log = (zv.home / "logs" / "wa-alpha.log").read_text()
    assert "readonly database" in log, "the runner did start on a read-only store"
