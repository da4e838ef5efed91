"""The core of `zapvisor hosts add|upgrade|trust|remove`: changing the fleet.

Each is one call, sync (the CLI's and the TUI's worker threads call it), running its SSH
work on an event loop of its own with one connection to the host. Questions to the
operator (trust this key? install zapvisor there?) are the caller's: a key nobody
vouched for ends in UnknownHostKey carrying its fingerprint, which the caller may show,
ask about and pass back as ``host_key``; an install is asked through ``confirm``.
Every bad input fails before anything changes, here, on the host or in the store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ecosystem.errors import Aborted, ConfigError, HostError, HostExists, RemoteZapvisorError
from ecosystem.fleet import bootstrap, host_changes, layout, remote, wheel
from ecosystem.fleet.connect import Endpoint, connect
from ecosystem.fleet.info import HostFacts
from ecosystem.fleet.knownhosts import (
    KeyPolicy,
    KnownHosts,
    fingerprint,
    known_hosts_path,
    normalise_fingerprint,
)
from ecosystem.fleet.records import (
    HostRecord,
    NewHost,
    check_port_range,
    host_exists,
    parse_target,
    sqlite_refusal,
    validate_host_name,
)
from ecosystem.fleet.ssh import SSHPool
from ecosystem.fleet.systemd import install_unit
from ecosystem.orchestrator import Orchestrator
from ecosystem.session import utcnow

T = TypeVar("T")
Confirm = Callable[[str], bool]
Progress = Callable[[str], None]


@dataclass(frozen=True)
class AddRequest:
    name: str
    target: str
    """USER@ADDRESS"""
    base_port: int
    max_sessions: int
    port: int = 22
    identity_file: str | None = None
    trust: bool = False
    host_key: str | None = None
    install: bool = False
    """Install (or replace) zapvisor there without asking."""
    env_file: Path | None = None
    """Store settings to write on the host instead of this machine's."""


@dataclass
class Outcome:
    host: HostRecord
    installed: str | None = None
    """The version installed there by this command, None when none was."""
    notes: list[str] = field(default_factory=list)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class HostsAdmin:
    def __init__(self, orch: Orchestrator, *, progress: Progress | None = None) -> None:
        self.orch = orch
        self.progress = progress or orch.progress

    @property
    def _detail(self) -> dict[str, str]:
        """Who acted from where, for the audit trail."""
        return {"from": self.orch.settings.host_id}

    def _fleet_store(self) -> None:
        settings = self.orch.settings
        if settings.store_kind == "sqlite":
            raise ConfigError(sqlite_refusal(settings.home))

    def _store_variables(self, env_file: Path | None) -> dict[str, str]:
        if env_file is None:
            return layout.store_variables(self.orch.settings)
        from dotenv import dotenv_values

        if not env_file.is_file():
            raise ConfigError(f"--env-file {env_file} does not exist")
        values = dotenv_values(env_file)
        found = {k: v for k in layout.STORE_VARIABLES if (v := values.get(k))}
        if not found:
            raise ConfigError(
                f"--env-file {env_file} sets none of {', '.join(layout.STORE_VARIABLES)}"
            )
        return found

    async def _kept(
        self, pool: SSHPool, endpoint: Endpoint, probe: remote.Probe
    ) -> tuple[str, dict[str, str], list[str]]:
        """The host's state dir and its own settings, kept across installs: those
        zapvisor knows, and the lines the operator added to its .env by hand."""
        from ecosystem.fleet.host_changes import KEPT_VARIABLES, kept_settings

        text = await bootstrap.read_host_env(pool, endpoint, probe)
        kept = kept_settings(text)
        home = kept.get("ZAPVISOR_HOME") or f"{probe.home}/.local/share/zapvisor"
        return home, kept, layout.hand_lines(text, KEPT_VARIABLES)

    # -- add --------------------------------------------------------------------

    def add(self, req: AddRequest, *, confirm: Confirm | None = None) -> Outcome:
        """`zapvisor hosts add`: reach the host, install zapvisor there when it has none
        (or another version) and the operator agrees, write its settings, record it in
        the store and check that it sees the same store."""
        name = validate_host_name(req.name)
        user, address = parse_target(req.target)
        check_port_range(req.base_port, req.max_sessions)
        expected = normalise_fingerprint(req.host_key) if req.host_key else None
        self._fleet_store()
        if name == self.orch.settings.host_id:
            raise HostExists(
                f"{name!r} is this machine's ZAPVISOR_HOST_ID: a remote host needs a name of "
                "its own"
            )
        store = self.orch.store
        if any(h.name == name for h in store.list_hosts()):
            raise host_exists(name)
        store_vars = self._store_variables(req.env_file)
        endpoint = Endpoint(name, address, user, req.port, req.identity_file)
        policy = KeyPolicy(trust_new=req.trust, expected=expected)
        return _run(self._add(req, endpoint, policy, store_vars, confirm))

    async def _add(
        self,
        req: AddRequest,
        endpoint: Endpoint,
        policy: KeyPolicy,
        store_vars: dict[str, str],
        confirm: Confirm | None,
    ) -> Outcome:
        paths = self.orch.paths
        paths.ensure()
        pool = SSHPool(paths)
        try:
            conn = await pool.connection(
                endpoint, policy=policy, first_contact_flags=True, remember=False
            )
            key = conn.get_server_host_key()
            assert key is not None
            probe = await remote.probe(pool, endpoint)
            version = wheel.installed_version()
            installed = None
            if probe.managed_version != version:
                await self._agree_to_install(endpoint, probe, version, req.install, confirm)
            home, kept, hand = await self._kept(pool, endpoint, probe)
            env_text = layout.host_env(
                endpoint.name,
                req.base_port,
                req.max_sessions,
                store_vars,
                home=home,
                kept=kept,
                hand=hand,
            )
            if probe.managed_version != version:
                await bootstrap.install(pool, endpoint, probe, env_text, progress=self.progress)
                installed = version
            else:
                await bootstrap.write_settings(pool, endpoint, probe, env_text)
            new = NewHost(
                name=endpoint.name,
                address=endpoint.address,
                ssh_user=endpoint.user,
                ssh_port=endpoint.port,
                identity_file=req.identity_file,
                base_port=req.base_port,
                max_sessions=req.max_sessions,
                zapvisor_path=probe.zapvisor,
                version=version,
                host_key=fingerprint(key),
            )
            detail = {**self._detail, "host": endpoint.name, "target": record_target(req)}
            record = await asyncio.to_thread(
                self.orch.store.add_host, new, actor=self.orch.actor, detail=detail
            )
            facts = await self._verify(pool, endpoint, record)
            KnownHosts(known_hosts_path(paths)).remember(endpoint.address, endpoint.port, key)
            record = await asyncio.to_thread(
                self.orch.store.update_host, record.name, {"last_seen": utcnow()}
            )
            notes = [
                f"{record.name}: zapvisor {facts.version}, {facts.sessions} session(s), "
                f"supervisord pid {facts.supervisord_pid}",
                await install_unit(pool, endpoint, probe, probe.zapvisor, home),
            ]
            return Outcome(record, installed, notes)
        finally:
            await pool.close()

    async def _agree_to_install(
        self,
        endpoint: Endpoint,
        probe: remote.Probe,
        version: str,
        install: bool,
        confirm: Confirm | None,
    ) -> None:
        there = (
            f"zapvisor {probe.managed_version} runs"
            if probe.managed_version
            else "zapvisor is not installed"
        )
        where = f"{endpoint.user} on {endpoint.name}"
        if install:
            return
        if confirm is None:
            raise RemoteZapvisorError(
                f"{there} for {where}: pass --install to install {version} there (into "
                f"{probe.root}), or run the command on a terminal to be asked"
            )
        bootstrap.check_can_install(endpoint.name, probe)  # say no early, before asking
        question = (
            f"{there} for {where}. Install zapvisor {version} there (a venv in {probe.root}, "
            f"about {bootstrap.NEEDED_MB} MB; pip fetches the dependencies)?"
        )
        if not await asyncio.to_thread(confirm, question):
            raise Aborted(f"nothing done: {endpoint.name} was not added")

    async def _verify(self, pool: SSHPool, endpoint: Endpoint, record: HostRecord) -> HostFacts:
        """Ask the host about itself (this starts its supervisord); a host that calls
        itself otherwise or does not see the row just written (another store) is
        taken out of the fleet again."""
        facts: HostFacts | None = None
        try:
            data = await remote.zapvisor_json(
                pool, endpoint, record.zapvisor_path, ["hosts", "info"]
            )
            facts = HostFacts.from_json(data)
            problem = None
            if facts.host_id != record.name:
                problem = (
                    f"{record.name} calls itself {facts.host_id!r} (ZAPVISOR_HOST_ID in "
                    "~/.zapvisor/.env there)"
                )
            elif not facts.registered:
                problem = (
                    f"{record.name} uses another store ({facts.store}) than this machine: "
                    "give it the fleet's store with --env-file FILE"
                )
        except HostError as exc:
            problem = str(exc)
        if problem is not None or facts is None:
            await asyncio.to_thread(
                self.orch.store.remove_host,
                record.name,
                actor=self.orch.actor,
                detail={**self._detail, "host": record.name, "reason": "check failed"},
            )
            raise RemoteZapvisorError(f"{problem}; it was not added")
        return facts

    # -- upgrade, trust, remove ----------------------------------------------------------

    def upgrade(self, name: str, *, force: bool = False, env_file: Path | None = None) -> Outcome:
        """`zapvisor hosts upgrade`: install this machine's version on the host again (and
        its settings), then move its runners onto it."""
        record = self.orch.store.get_host(name)
        store_vars = self._store_variables(env_file)
        return _run(self._upgrade(record, force, store_vars))

    async def _upgrade(
        self, record: HostRecord, force: bool, store_vars: dict[str, str]
    ) -> Outcome:
        endpoint = Endpoint.of(record)
        pool = SSHPool(self.orch.paths)
        version = wheel.installed_version()
        try:
            probe = await remote.probe(pool, endpoint)
            if probe.managed_version == version and not force:
                return Outcome(record, None, [f"{record.name} already runs zapvisor {version}"])
            home, kept, hand = await self._kept(pool, endpoint, probe)
            env_text = layout.host_env(
                record.name,
                record.base_port,
                record.max_sessions,
                store_vars,
                home=home,
                kept=kept,
                hand=hand,
            )
            await bootstrap.install(pool, endpoint, probe, env_text, progress=self.progress)
            notes = []
            if probe.systemd:
                notes.append(await install_unit(pool, endpoint, probe, probe.zapvisor, home))
            else:
                applied = await remote.zapvisor_json(
                    pool, endpoint, probe.zapvisor, ["apply"], timeout=300
                )
                waiting = sorted(p.removeprefix("wa-") for p in applied.get("deferred", []))
                if waiting:
                    # as with any apply, no running session is restarted behind its back
                    notes.append(
                        f"{len(waiting)} session(s) run the previous install until they "
                        f"restart ({', '.join(waiting[:5])}): `zapvisor restart NAME`"
                    )
            facts = await self._verify(pool, endpoint, record)
            notes.insert(0, f"{record.name}: zapvisor {facts.version}, {facts.sessions} session(s)")
            changed = await asyncio.to_thread(
                self.orch.store.update_host,
                record.name,
                {"version": facts.version, "zapvisor_path": probe.zapvisor, "last_seen": utcnow()},
                actor=self.orch.actor,
                action="host_upgrade",
                detail={
                    **self._detail,
                    "host": record.name,
                    "from_version": probe.managed_version,
                    "to_version": version,
                },
            )
            return Outcome(changed, version, notes)
        finally:
            await pool.close()

    def trust(self, name: str, host_key: str | None) -> Outcome:
        """`zapvisor hosts trust`: accept the key the host presents now (after checking
        it on the host), here and in the store."""
        record = self.orch.store.get_host(name)
        expected = normalise_fingerprint(host_key) if host_key else None
        endpoint = Endpoint.of(record)

        async def run() -> str:
            conn = await connect(
                endpoint, self.orch.paths, policy=KeyPolicy(expected=expected, replace=True)
            )
            key = conn.get_server_host_key()
            conn.close()
            assert key is not None
            return fingerprint(key)

        self.orch.paths.ensure()
        got = _run(run())
        changed = self.orch.store.update_host(
            name,
            {"host_key": got, "last_seen": utcnow()},
            actor=self.orch.actor,
            action="host_trust",
            detail={**self._detail, "host": name, "host_key": got, "was": record.host_key or ""},
        )
        return Outcome(changed, None, [f"{name}: host key {got} trusted"])

    def repoint(
        self,
        name: str,
        target: str,
        port: int,
        identity_file: str | None,
        host_key: str | None = None,
    ) -> HostRecord:
        """`zapvisor hosts repoint`: reach the same machine at a new address, SSH port,
        user or key file (checked there first); its sessions are left as they are."""
        return host_changes.repoint(self, name, target, port, identity_file, host_key)

    def set_accepts_failover(self, name: str, on: bool, *, wait: float | None = None) -> bool:
        """`zapvisor hosts failover NAME on|off`: whether the host takes over sessions of
        silent hosts (whether its heartbeat said so within ``wait`` seconds, by default
        a few of its monitor's checks)."""
        return host_changes.set_accepts_failover(self, name, on, wait=wait)

    def remove(self, name: str) -> HostRecord:
        """`zapvisor hosts remove`: out of the fleet (refused while it holds sessions);
        the machine itself is left as it is."""
        record = self.orch.store.get_host(name)
        self.orch.store.remove_host(
            name, actor=self.orch.actor, detail={**self._detail, "host": name}
        )
        KnownHosts(known_hosts_path(self.orch.paths)).forget(record.address, record.ssh_port)
        return record


def record_target(req: AddRequest) -> str:
    port = "" if req.port == 22 else f":{req.port}"
    return f"{req.target}{port}"
