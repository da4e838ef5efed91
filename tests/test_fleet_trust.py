"""Host keys against a real OpenSSH sshd: first contact (asked on a terminal, refused
without one unless --trust or the right --host-key), a changed key refused with both
fingerprints and the command that fixes it, and a second control machine trusting the
key the fleet's store recorded."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from ecosystem.store.postgres import PostgresStore
from tests.conftest import Env
from tests.fleet_fixtures import Fleet
from tests.sshd import SshServer

pytestmark = pytest.mark.e2e


def known_hosts(env: Env) -> str:
    path = env.home / "known_hosts"
    return path.read_text() if path.exists() else ""


def test_first_contact_without_a_terminal_needs_trust_or_the_fingerprint(fleet: Fleet) -> None:
    host = fleet.host("vps-k")
    args = host.add_args(fleet.key)
    refused = fleet.control.cli(*args, check=False)
    assert refused.returncode == 2, refused.stderr
    line = refused.stderr.strip()
    assert len(line.splitlines()) == 1
    assert "first contact" in line and fleet.sshd.fingerprint in line
    assert "--host-key" in line and "--trust" in line
    assert known_hosts(fleet.control) == "" and fleet.registered() == []

    wrong = fleet.control.cli(*args, "--host-key", "SHA256:" + "A" * 43, check=False)
    assert wrong.returncode == 77, wrong.stderr
    assert "not the expected SHA256:AAAA" in wrong.stderr and fleet.sshd.fingerprint in wrong.stderr
    assert known_hosts(fleet.control) == "" and fleet.registered() == []

    malformed = fleet.control.cli(*args, "--host-key", "md5:12:34", check=False)
    assert malformed.returncode == 65 and "not a SHA256 fingerprint" in malformed.stderr

    fleet.control.cli(*args, "--host-key", fleet.sshd.fingerprint)
    assert fleet.registered() == ["vps-k"]
    assert f"[127.0.0.1]:{fleet.sshd.port} ssh-ed25519" in known_hosts(fleet.control)


def _run_on_a_terminal(env: Env, args: list[str], answers: dict[str, str]) -> tuple[int, str]:
    """Run `zapvisor ARGS` with a terminal as stdin/stdout/stderr, answering prompts."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli.main", *args],
        env=env.vars,
        cwd=env.home.parent,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
    )
    os.close(slave)
    seen = b""
    pending = dict(answers)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
            for prompt, answer in list(pending.items()):
                if prompt.encode() in seen:
                    os.write(master, answer.encode() + b"\n")
                    del pending[prompt]
        elif proc.poll() is not None:
            break
    code = proc.wait(30)
    os.close(master)
    return code, seen.decode(errors="replace")


def test_first_contact_on_a_terminal_shows_the_fingerprint_and_asks(fleet: Fleet) -> None:
    host = fleet.host("vps-t")
    code, said = _run_on_a_terminal(fleet.control, host.add_args(fleet.key), {"Trust it?": "n"})
    assert code == 2 and fleet.sshd.fingerprint in said and "not trusted" in said
    assert fleet.registered() == [] and known_hosts(fleet.control) == ""

    code, said = _run_on_a_terminal(fleet.control, host.add_args(fleet.key), {"Trust it?": "y"})
    assert code == 0, said
    assert fleet.sshd.fingerprint in said and "added vps-t" in said
    assert fleet.registered() == ["vps-t"]


def test_a_changed_host_key_is_refused_until_trusted_again(
    fleet: Fleet, make_sshd: Callable[[], SshServer]
) -> None:
    server = make_sshd()
    host = fleet.host("vps-c", sshd=server)
    fleet.add(host)
    old = server.fingerprint
    server.stop()
    new = server.new_host_key()
    server.start()

    listed = {h["name"]: h for h in fleet.control.json("hosts", "list")}
    assert not listed["vps-c"]["reachable"] and "CHANGED" in listed["vps-c"]["error"]

    refused = fleet.control.cli("hosts", "check", "vps-c", check=False)
    assert refused.returncode == 77, refused.stderr
    line = refused.stderr.strip()
    assert len(line.splitlines()) == 1 and old in line and new in line
    assert f"zapvisor hosts trust vps-c --host-key {new}" in line

    wrong = fleet.control.cli("hosts", "trust", "vps-c", "--host-key", old, check=False)
    assert wrong.returncode == 77 and new in wrong.stderr  # refused, the new key shown
    fleet.control.cli("hosts", "trust", "vps-c", "--host-key", new)
    report = json.loads(fleet.control.cli("hosts", "check", "vps-c", "--json").stdout)
    assert report["ok"] and new in report["checks"][0]["detail"]
    assert old not in known_hosts(fleet.control)
    store = PostgresStore(fleet.store["ZAPVISOR_DATABASE_URL"])
    try:
        assert store.get_host("vps-c").host_key == new
        assert store.list_events(limit=1)[0].action == "host_trust"
    finally:
        store.close()


def test_a_second_control_machine_trusts_the_key_the_store_recorded(
    fleet: Fleet, make_env: Callable[..., Env]
) -> None:
    host = fleet.host("vps-s")
    fleet.add(host)
    other = make_env(ZAPVISOR_HOST_ID="laptop", **fleet.store)
    listed = {h["name"]: h for h in other.json("hosts", "list")}
    assert listed["vps-s"]["reachable"], listed["vps-s"]["error"]
    assert f"[127.0.0.1]:{fleet.sshd.port} ssh-ed25519" in known_hosts(other)
