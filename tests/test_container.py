"""The container: Dockerfile, compose.yaml and the entrypoint.

No Docker engine runs here, so the image is never built. What can be checked is: the
entrypoint run as the process it is in the container (a real supervisord, a real sim
runner, SIGTERM as `docker stop` sends it), its health check command, and the compose
file parsed (one service, the state dir on a volume, the session port range published,
the environment names zapvisor knows) and matched against the Dockerfile.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from ecosystem.orchestrator import Orchestrator
from ecosystem.settings import ENV_NAMES, make_settings
from tests.conftest import ROOT, Env, wait_for
from tests.conftest import _alive as alive

ENTRYPOINT = ROOT / "scripts" / "container-entrypoint.sh"
_VAR = re.compile(r"\$\{(\w+):-([^}]*)\}")


def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "compose.yaml").read_text("utf-8"))
    assert isinstance(data, dict)
    return data


def service() -> dict[str, Any]:
    services = compose()["services"]
    assert list(services) == ["zapvisor"], "one service"
    svc = services["zapvisor"]
    assert isinstance(svc, dict)
    return svc


def defaults(text: str) -> str:
    """Compose's `${VAR:-default}` with every variable unset."""
    return _VAR.sub(lambda m: m.group(2), text)


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments), continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text("utf-8")
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = "\n".join(lines).replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def docker_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, args in dockerfile():
        if word == "ENV":
            for pair in args.split():
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def healthcheck() -> str:
    test = service()["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    return str(test[1]).replace("$$", "$")  # compose's escape for a literal $


def test_compose_is_one_service_with_volume_ports_restart_and_health() -> None:
    svc = service()
    assert svc["restart"] == "unless-stopped"
    assert svc["init"] is True  # tini reaps orphans and passes SIGTERM on
    assert svc["build"] == "."
    env = {k: defaults(str(v)) for k, v in svc["environment"].items()}
    # every variable is one zapvisor knows (a typo would be refused at start)
    assert set(env) <= set(ENV_NAMES.values())
    home = env["ZAPVISOR_HOME"]
    assert home == docker_env()["ZAPVISOR_HOME"] == "/data"
    assert env["ZAPVISOR_HOST_ID"], "a fixed host id: a new container has a new hostname"
    assert env["ZAPVISOR_BIND"] == "0.0.0.0"
    volume, target = svc["volumes"][0].split(":")
    assert target == home and volume in compose()["volumes"]
    # the published range is exactly the sessions' ports, on loopback unless told
    (port_spec,) = svc["ports"]
    address, outside, inside = defaults(port_spec).split(":")
    assert address == "127.0.0.1" and outside == inside
    first, last = (int(p) for p in inside.split("-"))
    settings = make_settings(base_port=int(env["BASE_PORT"]), max_sessions=int(env["MAX_SESSIONS"]))
    assert (first, last) == (settings.base_port, settings.last_port)
    assert (first, last) == (make_settings().base_port, 3010)
    hc = svc["healthcheck"]
    assert "ZAPVISOR_HOME" in healthcheck() and hc["retries"] >= 1
    grace = svc["stop_grace_period"]
    assert grace.endswith("s") and int(grace[:-1]) >= 30
    assert any(f["path"] == "zapvisor.env" and f["required"] is False for f in svc["env_file"])


def test_dockerfile_matches_compose_and_the_repository() -> None:
    steps = dockerfile()
    words = [w for w, _ in steps]
    assert words[0] == "FROM" and words.count("USER") == 1
    for word, args in steps:
        if word == "COPY":
            *sources, _dest = args.split()
            for src in sources:
                assert (ROOT / src).exists(), f"COPY {src}: no such file in the repository"
    (entry,) = [json.loads(a) for w, a in steps if w == "ENTRYPOINT"]
    assert entry == ["zapvisor-entrypoint"]
    copied = [
        a for w, a in steps if w == "COPY" and a.endswith("/usr/local/bin/zapvisor-entrypoint")
    ]
    assert copied == ["scripts/container-entrypoint.sh /usr/local/bin/zapvisor-entrypoint"]
    assert os.access(ENTRYPOINT, os.X_OK)
    (expose,) = [a for w, a in steps if w == "EXPOSE"]
    assert expose == defaults(service()["ports"][0]).split(":")[2]
    (check,) = [a for w, a in steps if w == "HEALTHCHECK"]
    assert 'supervisorctl -c "$ZAPVISOR_HOME/supervisord.conf" pid' in check
    assert healthcheck().startswith('supervisorctl -c "$ZAPVISOR_HOME/supervisord.conf" pid')
    assert {"ZAPVISOR_HOME", "ZAPVISOR_BIND", "ZAPVISOR_HOST_ID"} <= set(docker_env())
    assert set(docker_env()) - {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED",
        "PIP_DISABLE_PIP_VERSION_CHECK", "PATH"} <= set(ENV_NAMES.values())  # fmt: skip
    ignored = (ROOT / ".dockerignore").read_text("utf-8").split()
    assert ".venv" in ignored and ".env" in ignored  # no secrets or venv in the image


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as resp:
            return bool(json.loads(resp.read())["ok"])
    except (OSError, ValueError, KeyError):
        return False


@pytest.mark.e2e
def test_entrypoint_brings_sessions_up_and_stops_them_on_sigterm(zv: Env) -> None:
    """The container's process for real, on loopback (ZAPVISOR_BIND stays 127.0.0.1
    here): a paired sim session comes back connected when the entrypoint starts, the
    health check passes, and SIGTERM stops every runner and supervisord, exit 0."""
    made = zv.json("create", "caixa", "--connector", "sim")
    phone = zv.json("sim-scan", "caixa")["phone"]
    zv.cli("shutdown")  # as after `docker compose down`: the desired state is kept
    env = zv.vars | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    check = ["sh", "-c", healthcheck()]
    before = subprocess.run(check, env=env, capture_output=True, check=False)
    assert before.returncode != 0, "healthy with nothing running"
    proc = subprocess.Popen(
        [str(ENTRYPOINT)], env=env, cwd=zv.home.parent, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(
            lambda: subprocess.run(check, env=env, capture_output=True).returncode == 0,
            timeout=30,
        )
        wait_for(lambda: _healthy(made["port"]), timeout=30)
        orch = Orchestrator(zv.settings())
        try:
            session = wait_for(
                lambda: (s := orch.session("caixa")).status == "connected" and s, timeout=20
            )
            assert session.phone == phone
            sup_pid = zv.supervisord_pid()
            assert sup_pid and alive(sup_pid)
            runner = orch.sup.process_info("wa-caixa")
            assert runner is not None and runner.pid
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
            took = time.monotonic() - started
            assert not alive(sup_pid) and not alive(runner.pid)
            assert took < 30, f"stopping took {took:.1f} s"
            assert orch.session("caixa").desired_state == "running"
        finally:
            orch.close()
        after = subprocess.run(check, env=env, capture_output=True, check=False)
        assert after.returncode != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_entrypoint_with_arguments_runs_that_command(zv: Env) -> None:
    env = zv.vars | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    out = subprocess.run(
        [str(ENTRYPOINT), "--version"], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("zapvisor ")
