"""A runner that is only watched (its `/health` polled, its QR rotating in the store)
never loads pydantic: its rows are records (ecosystem/record.py) and the API's pydantic
models are imported by the first request that needs one. pydantic is ~13 MB of a sim
runner's ~26 MB and ~80 ms of its start. A real runner under supervisord; what it has
loaded is read from its memory maps."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from runner import api_models
from tests.conftest import ROOT, Env, wait_for
from tests.test_runner_api import get

pytestmark = pytest.mark.e2e


def pydantic_loaded(pid: int) -> bool:
    """Whether pydantic's native core is mapped into the process."""
    return "_pydantic_core" in Path(f"/proc/{pid}/maps").read_text()


def test_a_watched_runner_never_loads_pydantic_until_a_request_needs_it(zv: Env) -> None:
    port = zv.json("create", "lean", "--connector", "sim")["port"]
    token = (zv.home / "secrets" / "lean.token").read_text().strip()
    wait_for(lambda: zv.json("show", "lean").get("qr_payload"), timeout=30)
    status, _, body = get(port, "/health")
    health = json.loads(body)
    assert status == 200 and health["session"] == "lean" and health["status"] == "waiting_scan"
    # /health answers what the Health model documents, though it is not built from it
    assert set(health) == set(api_models.Health.model_fields)
    assert api_models.Health.model_validate(health).pid == health["pid"]

    assert not pydantic_loaded(health["pid"])
    status, _, body = get(port, "/status", token=token)
    assert status == 200 and json.loads(body)["sessionId"] == "lean"
    assert pydantic_loaded(health["pid"])  # the answer's model: imported on first use


# A real runner, started as supervisord starts it, that writes the modules it loaded
# when it leaves (its exit_now, which every way out takes).
_RUN_AND_LIST = """
import os, sys
import runner.__main__ as entry

out = os.environ.pop("LEAN_MODULES_OUT")
leave = entry.exit_now

def exit_now(code):
    with open(out, "w") as f:
        f.write("\\n".join(sorted(sys.modules)))
    leave(code)

entry.exit_now = exit_now
entry.main()
"""
NOT_AT_START = {
    "argparse": "the options as supervisord gives them are read without it",
    "dotenv": "runtime.env as zapvisor writes it is read without it",
    "uuid": "event ids are made without it",
    "zoneinfo": "only a bot with quiet hours needs it",
    "runner.bot": "the bot is made by the first message or send",
    "runner.connectors.sim_faults": "only a sim session with faults in its config",
    "ecosystem.moves": "the runner needs only which stores are shared",
    "ecosystem.store.migrations": "a store already migrated never reads them",
    "tempfile": "only where a file is written",
    "ecosystem.ports": "a runner never creates a session",
}


def status_of(port: int) -> str | None:
    """The status `/health` answers, None while nothing answers."""
    try:
        status, _, body = get(port, "/health")
    except OSError:
        return None
    return str(json.loads(body)["status"]) if status == 200 else None


def test_a_runner_loads_none_of_what_only_some_sessions_need(
    make_env: Callable[..., Env],
) -> None:
    # no delivery falls due while it runs: sending one loads httpx (with uuid and
    # tempfile), which a runner does once a webhook is due, not to start
    zv = make_env(ZAPVISOR_WEBHOOK_RETRY_SCHEDULE="600")
    hook = zv.base_port + zv.max_sessions - 1  # no session's: deliveries fail, stay pending
    port = zv.json(
        "create", "slim", "--connector", "sim", "--webhook-url", f"http://127.0.0.1:{hook}/h"
    )["port"]
    zv.cli("stop", "slim")
    out = zv.home.parent / "modules.txt"
    words = ["--home", str(zv.home), "--session", "slim", "--port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, "-c", _RUN_AND_LIST, *words],
        cwd=ROOT,
        env={**zv.vars, "LEAN_MODULES_OUT": str(out)},
    )
    try:
        wait_for(lambda: status_of(port) == "waiting_scan", timeout=30)
        db = sqlite3.connect(zv.home / "zapvisor.db")
        ids = wait_for(
            lambda: [r[0] for r in db.execute("SELECT event_id FROM webhook_outbox")],
            timeout=30,
        )
        db.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    loaded = set(out.read_text().split())
    assert {"runner.core", "runner.connectors.sim", "ecosystem.webhook_events"} <= loaded
    found = {m: why for m, why in NOT_AT_START.items() if m in loaded}
    assert not found, f"a runner that only started loaded {found}"
    # the ids it made (without uuid) are as uuid4().hex made them
    for event_id in ids:
        assert event_id.startswith("evt_")
        made = uuid.UUID(hex=event_id[4:])
        assert made.hex == event_id[4:] and made.version == 4
        assert made.variant == uuid.RFC_4122
