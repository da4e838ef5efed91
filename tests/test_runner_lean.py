"""A runner that is only watched (its `/health` polled, its QR rotating in the store)
never loads pydantic: its rows are records (ecosystem/record.py) and the API's pydantic
models are imported by the first request that needs one. pydantic is ~13 MB of a sim
runner's ~26 MB and ~80 ms of its start. A real runner under supervisord; what it has
loaded is read from its memory maps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner import api_models
from tests.conftest import Env, wait_for
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
