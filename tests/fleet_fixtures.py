"""Fixtures for tests with real remote hosts over real OpenSSH (imported by conftest.py,
so every test module can ask for them by name).

    ssh_key          (session) the control side's ed25519 key: ``.path`` (0600), ``.public``
    fleet_venv       (session) the venv remote hosts run: this tree, from /usr/bin/python3
    sshd             (session) a real sshd on 127.0.0.1 shared by a worker's tests
    make_sshd        a factory of private sshds, for tests that kill, freeze or rekey one
    fleet            the control side (an Env on a fresh PostgreSQL database, host id
                     "control") and ``fleet.host(...)``, which makes a remote host: a
                     Linux user of its own with ~/.zapvisor laid out as a bootstrap
                     leaves it (or nothing at all, ``installed=False``), its own
                     ZAPVISOR_HOME, BASE_PORT range and ZAPVISOR_HOST_ID, sharing the
                     store; ``fleet.add(host)`` runs `zapvisor hosts add` for it

Users, ports and directories are unique per test process, so `pytest -n 2` never
clashes; every user (with its processes, by pid) and sshd is removed after the test.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests import sshd as real
from tests.sshd import HostSetup, HostUser, SshServer

if TYPE_CHECKING:
    from tests.conftest import Env


def free_port_block(size: int) -> int:
    # conftest imports this module: take its helper at call time, not at import
    from tests.conftest import free_port_block as block

    return block(size)


@dataclass(frozen=True)
class ClientKey:
    path: Path
    public: str


@pytest.fixture(scope="session")
def ssh_key() -> Iterator[ClientKey]:
    import asyncssh

    folder = Path(tempfile.mkdtemp(prefix="zv-sshkey-", dir="/tmp"))
    key = asyncssh.generate_private_key("ssh-ed25519", comment="zapvisor-tests")
    path = folder / "id_ed25519"
    key.write_private_key(path)
    path.chmod(0o600)
    yield ClientKey(path, key.export_public_key().decode().strip())
    path.unlink(missing_ok=True)
    folder.rmdir()


def _require_sshd() -> None:
    missing = real.sshd_missing()
    if missing:
        pytest.skip(missing)


@pytest.fixture(scope="session")
def fleet_venv() -> Path:
    _require_sshd()
    return real.fleet_venv()


@pytest.fixture(scope="session")
def sshd() -> Iterator[SshServer]:
    _require_sshd()
    real.sweep_stale_users()
    server = SshServer(free_port_block(1)).start()
    yield server
    server.destroy()


@pytest.fixture
def make_sshd() -> Iterator[Callable[[], SshServer]]:
    _require_sshd()
    made: list[SshServer] = []

    def make() -> SshServer:
        server = SshServer(free_port_block(1)).start()
        made.append(server)
        return server

    yield make
    for server in made:
        server.destroy()


@dataclass
class RemoteHost:
    """A remote host: a Linux user reached through ``sshd``."""

    name: str
    user: HostUser
    sshd: SshServer
    setup: HostSetup
    zapvisor: str | None
    """The wrapper's path when zapvisor is installed there."""

    @property
    def target(self) -> str:
        return f"{self.user.name}@127.0.0.1"

    def add_args(self, key: ClientKey, *extra: str) -> list[str]:
        return [
            "hosts",
            "add",
            self.name,
            self.target,
            "--port",
            str(self.sshd.port),
            "--identity",
            str(key.path),
            "--base-port",
            str(self.setup.base_port),
            "--max-sessions",
            str(self.setup.max_sessions),
            *extra,
        ]

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`zapvisor ARGS` run on the host itself, as its user (not over SSH)."""
        assert self.zapvisor is not None, "zapvisor is not installed on this host"
        return real.as_user(self.user, [self.zapvisor, *args], timeout=timeout)

    def json(self, *args: str) -> Any:
        proc = self.run(*args, "--json")
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    def set_env(self, values: dict[str, str]) -> None:
        """Settings added to the host's ~/.zapvisor/.env (which `hosts add` rewrites with
        the fleet's store alone), as an operator editing it there would: every zapvisor
        started on the host afterwards reads them."""
        from ecosystem.fleet import layout
        from ecosystem.supctl.statefiles import dotenv_quote

        env = Path(layout.remote_root(str(self.user.home))) / ".env"
        kept = [
            line
            for line in env.read_text().splitlines()
            if line.partition("=")[0].strip() not in values
        ]
        added = [f"{k}={dotenv_quote(v)}" for k, v in values.items()]
        env.write_text("\n".join(kept + added) + "\n")  # keeps its owner and 0600

    def supervisord_pid(self) -> int | None:
        try:
            return int((self.setup.home / "supervisord.pid").read_text().strip())
        except (OSError, ValueError):
            return None


@dataclass
class Fleet:
    control: Env
    store: dict[str, str]
    sshd: SshServer
    key: ClientKey
    venv: Path
    hosts: list[RemoteHost] = field(default_factory=list)

    def host(
        self,
        name: str | None = None,
        *,
        installed: bool = True,
        sshd: SshServer | None = None,
        max_sessions: int = 5,
        authorized: bool = True,
    ) -> RemoteHost:
        user = real.create_user()
        server = sshd or self.sshd
        setup = HostSetup(
            name or f"vps-{len(self.hosts) + 1}",
            free_port_block(max_sessions),
            max_sessions,
            user.home / ".local" / "share" / "zapvisor",
        )
        host = RemoteHost(setup.name, user, server, setup, None)
        self.hosts.append(host)
        if authorized:
            real.authorize(user, self.key.public)
        if installed:
            host.zapvisor = str(real.install_host(user, self.venv, setup, self.store))
        return host

    def registered(self) -> list[str]:
        """The hosts the fleet's store has, read straight from it."""
        from ecosystem.store.postgres import PostgresStore

        store = PostgresStore(self.store["ZAPVISOR_DATABASE_URL"])
        try:
            return [h.name for h in store.list_hosts()]
        finally:
            store.close()

    def add(
        self, host: RemoteHost, *extra: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """`zapvisor hosts add` for ``host`` on the control side (trusting its key)."""
        return self.control.cli(*host.add_args(self.key, "--trust", *extra), check=check)

    def cleanup(self) -> None:
        for host in self.hosts:
            if host.zapvisor is not None or (host.user.home / ".zapvisor" / "zapvisor").exists():
                host.zapvisor = str(host.user.home / ".zapvisor" / "zapvisor")
                host.run("shutdown", timeout=120)
            real.delete_user(host.user)


@pytest.fixture
def fleet(
    pg_dsn: str,
    make_env: Callable[..., Env],
    sshd: SshServer,
    ssh_key: ClientKey,
    fleet_venv: Path,
) -> Iterator[Fleet]:
    store = {"ZAPVISOR_DATABASE_URL": pg_dsn}
    control = make_env(ZAPVISOR_HOST_ID="control", **store)
    made = Fleet(control, store, sshd, ssh_key, fleet_venv)
    yield made
    made.cleanup()
