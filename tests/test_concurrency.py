"""Two `zapvisor create` loops at once: every session gets its own port and program."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import Env, wait_for

pytestmark = pytest.mark.e2e

SCRIPT = """
import sys
from ecosystem.models import NewSession
from ecosystem.orchestrator import Orchestrator
from ecosystem.settings import load_settings

prefix = sys.argv[1]
orch = Orchestrator(load_settings())
for i in range(10):
    orch.create(NewSession(name=f"{prefix}-{i:02d}", connector="sim"))
"""


def test_two_processes_creating_ten_sessions_each(make_env) -> None:  # type: ignore[no-untyped-def]
    env: Env = make_env(max_sessions=25)
    env.cli("list")  # supervisord up, so both writers race on the store and the config
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT, prefix],
            env=env.vars,
            cwd=env.home.parent,
            stderr=subprocess.PIPE,
            text=True,
        )
        for prefix in ("left", "right")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    sessions = env.json("list")
    assert len(sessions) == 20

    # the last runners may still be inside supervisord's startsecs window
    def all_running() -> list[dict[str, object]] | None:
        found: list[dict[str, object]] = env.json("list")
        return found if all(s["process_state"] == "RUNNING" for s in found) else None

    sessions = wait_for(all_running)
    ports = [s["port"] for s in sessions]
    assert len(set(ports)) == 20
    assert set(ports) == set(range(env.base_port, env.base_port + 20))
    assert all(s["process_state"] == "RUNNING" and s["pid"] for s in sessions), [
        (s["name"], s["process_state"]) for s in sessions if s["process_state"] != "RUNNING"
    ]
    assert len({s["pid"] for s in sessions}) == 20
    status = env.cli("ctl", "status").stdout
    runners = [line for line in status.splitlines() if line.startswith("wa-")]
    assert len(runners) == 20 and all("RUNNING" in line for line in runners)
    assert "zapvisor-health" in status, "the health monitor runs beside them"
