"""`zapvisor hosts add --install` on a user without zapvisor, for real: a wheel of this
tree over SFTP, a venv from the host's python3, pip fetching the dependencies from the
package index, the settings written 0600; then `hosts upgrade` moves its runners onto a
fresh install. The slowest test of the fleet (two real installs); the others reuse the
shared venv of tests/fleet_fixtures.py."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from ecosystem import __version__
from tests.conftest import ROOT
from tests.fleet_fixtures import Fleet
from tests.sshd import as_user

pytestmark = pytest.mark.e2e


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def settled(host: Any, name: str) -> dict[str, Any]:
    """show NAME once supervisord is past STARTING (its first second after a start)."""
    deadline = time.monotonic() + 30
    while (shown := host.json("show", name))["process_state"] == "STARTING":
        assert time.monotonic() < deadline, f"{name} still STARTING after 30 s"
        time.sleep(0.2)
    result: dict[str, Any] = shown
    return result


def test_a_fresh_user_gets_this_zapvisor_in_one_command(fleet: Fleet) -> None:
    host = fleet.host("vps-new", installed=False)
    added = fleet.control.cli(
        *host.add_args(fleet.key, "--trust", "--install", "--json"), timeout=1500
    )
    outcome = json.loads(added.stdout)
    assert outcome["installed"] == __version__
    assert any("no systemd on vps-new" in note for note in outcome["notes"])

    root = host.user.home / ".zapvisor"
    host.zapvisor = str(root / "zapvisor")
    assert mode(root) == 0o700 and root.stat().st_uid == host.user.uid
    assert mode(root / ".env") == 0o600 and mode(root / "zapvisor") == 0o700
    env = (root / ".env").read_text()
    assert "ZAPVISOR_HOST_ID='vps-new'" in env and fleet.store["ZAPVISOR_DATABASE_URL"] in env
    assert f"BASE_PORT='{host.setup.base_port}'" in env
    venv = (root / "venv").readlink()
    assert str(venv).startswith(f"venv-{__version__}-")
    assert [p.name for p in root.iterdir() if p.suffix == ".whl"] == []  # cleaned up
    # exactly this tree's code, installed from the wheel (not a link to the tree)
    site = next((root / venv / "lib").glob("python3*/site-packages"))
    shipped = site / "ecosystem" / "fleet" / "bootstrap.py"
    assert not shipped.is_symlink()
    assert shipped.read_bytes() == (ROOT / "ecosystem" / "fleet" / "bootstrap.py").read_bytes()
    assert (site / "ecosystem" / "supctl" / "supervisord.conf.j2").is_file()
    assert host.run("--version").stdout.strip() == f"zapvisor {__version__}"

    # the host works: a session there, in the fleet's store, its runner on its ports
    host.run("create", "cliente-9", "--connector", "sim")
    shown = settled(host, "cliente-9")
    assert shown["host"] == "vps-new" and shown["process_state"] == "RUNNING"
    assert host.setup.base_port <= shown["port"] < host.setup.base_port + 5
    listed = {h["name"]: h for h in fleet.control.json("hosts", "list")}
    assert listed["vps-new"]["reachable"] and listed["vps-new"]["sessions"] == 1

    same = fleet.control.cli("hosts", "upgrade", "vps-new")
    assert f"already runs zapvisor {__version__}" in same.stdout

    # the operator's own line in the host's .env survives the upgrade, as written
    (root / ".env").write_text(env + "# mine\nLOG_LEVEL=debug\n")
    upgraded = json.loads(
        fleet.control.cli("hosts", "upgrade", "vps-new", "--force", "--json", timeout=1500).stdout
    )
    assert upgraded["installed"] == __version__
    rewritten = (root / ".env").read_text()
    assert rewritten.endswith("# mine\nLOG_LEVEL=debug\n") and mode(root / ".env") == 0o600
    assert rewritten.count("ZAPVISOR_HOST_ID=") == 1
    newer = (root / "venv").readlink()
    assert newer != venv and (root / venv).is_dir()  # the previous install is kept
    # as with any apply, the running session was not restarted behind its back: it runs
    # the previous install (kept) until it restarts, and then the new one
    assert any("cliente-9" in note and "restart" in note for note in upgraded["notes"])
    assert host.json("show", "cliente-9")["pid"] == shown["pid"]
    host.run("restart", "cliente-9")
    after = settled(host, "cliente-9")
    assert after["pid"] != shown["pid"] and after["process_state"] == "RUNNING"
    cmdline = Path(f"/proc/{after['pid']}/cmdline").read_bytes().split(b"\0")
    assert cmdline[0].decode().startswith(str(root / newer))
    events = [e["action"] for e in fleet.control.json("events")]
    assert "host_upgrade" in events and "host_add" in events
    assert as_user(host.user, [str(root / "zapvisor"), "--version"]).returncode == 0
