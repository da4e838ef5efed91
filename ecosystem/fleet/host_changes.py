"""Changing a host already in the fleet, in place: `zapvisor hosts repoint` (a new
address, SSH port, user or key file for the same machine) and `hosts failover` (whether
it takes over sessions of silent hosts). Neither touches its sessions.

A re-point is checked before the store changes: the machine at the new login must
present the host key the fleet trusts for that host and call itself by that name in the
same store; otherwise nothing changes. The failover switch is that host's own setting,
ZAPVISOR_ACCEPT_FAILOVER in its `~/.zapvisor/.env`: written there over SFTP, then its
`zapvisor apply` hands it to its health monitor (no runner restarts), and the change is
done when its heartbeat says so.
"""

from __future__ import annotations

import asyncio
import io
import posixpath
import time
from typing import TYPE_CHECKING

import asyncssh

from ecosystem.errors import RemoteZapvisorError
from ecosystem.fleet import remote
from ecosystem.fleet.bootstrap import write_private_file
from ecosystem.fleet.connect import Endpoint
from ecosystem.fleet.info import HostFacts
from ecosystem.fleet.knownhosts import KeyPolicy, KnownHosts, known_hosts_path
from ecosystem.fleet.records import HostRecord, format_target, parse_target
from ecosystem.fleet.ssh import SSHPool
from ecosystem.session import utcnow
from ecosystem.supctl.statefiles import dotenv_quote

if TYPE_CHECKING:
    from ecosystem.fleet.admin import HostsAdmin

ACCEPT_VARIABLE = "ZAPVISOR_ACCEPT_FAILOVER"
KEPT_VARIABLES = ("ZAPVISOR_HOME", ACCEPT_VARIABLE)
"""A host's own settings an upgrade writes back as it found them."""


def repoint(
    admin: HostsAdmin,
    name: str,
    target: str,
    port: int,
    identity_file: str | None,
    host_key: str | None = None,
) -> HostRecord:
    """Reach host ``name`` at ``target`` (USER@ADDRESS) and ``port`` from now on."""
    orch = admin.orch
    record = orch.store.get_host(name)
    user, address = parse_target(target)
    endpoint = Endpoint(name, address, user, port, identity_file, store_key=record.host_key)
    policy = KeyPolicy(expected=host_key) if host_key else None
    orch.paths.ensure()

    there = format_target(user, address, port)

    async def check() -> tuple[asyncssh.SSHKey, str]:
        pool = SSHPool(orch.paths)
        try:
            conn = await pool.connection(endpoint, policy=policy, remember=False)
            key = conn.get_server_host_key()
            assert key is not None
            probe = await remote.probe(pool, endpoint)  # another login: another home
            if probe.managed_version is None:
                raise RemoteZapvisorError(
                    f"{there} has no zapvisor ({probe.zapvisor}), so it is not host {name}: "
                    "nothing changed"
                )
            data = await remote.zapvisor_json(pool, endpoint, probe.zapvisor, ["hosts", "info"])
            facts = HostFacts.from_json(data)
        finally:
            await pool.close()
        if facts.host_id != name:
            raise RemoteZapvisorError(
                f"{there} is host {facts.host_id!r} (its ZAPVISOR_HOST_ID), not {name}: "
                "nothing changed"
            )
        if not facts.registered:
            raise RemoteZapvisorError(
                f"{there} calls itself {name} but uses another store ({facts.store}): "
                "nothing changed"
            )
        return key, probe.zapvisor

    key, zapvisor_path = asyncio.run(check())
    known = KnownHosts(known_hosts_path(orch.paths))
    known.remember(address, port, key)
    changed = orch.store.update_host(
        name,
        {
            "address": address,
            "ssh_user": user,
            "ssh_port": port,
            "identity_file": identity_file,
            "zapvisor_path": zapvisor_path,
            "last_seen": utcnow(),
        },
        actor=orch.actor,
        action="host_repoint",
        detail={**admin._detail, "host": name, "was": record.target, "target": target},
    )
    if (record.address, record.ssh_port) != (address, port):
        known.forget(record.address, record.ssh_port)
    return changed


def set_accepts_failover(
    admin: HostsAdmin, name: str, on: bool, *, wait: float | None = None
) -> bool:
    """Switch host ``name``'s ZAPVISOR_ACCEPT_FAILOVER, then wait up to ``wait`` seconds
    (default: a lease and three health checks) for its heartbeat to say so (whether it
    did)."""
    orch = admin.orch
    if wait is None:
        wait = 3 * orch.settings.health_interval + orch.settings.lease_seconds
    record = orch.store.get_host(name)
    endpoint = Endpoint.of(record)
    orch.paths.ensure()

    async def write() -> None:
        pool = SSHPool(orch.paths)
        try:
            probe = await remote.probe(pool, endpoint)
            path = posixpath.join(probe.root, ".env")
            async with pool.sftp(endpoint, timeout=30) as sftp:
                async with sftp.open(path, "r") as fh:
                    text = str(await fh.read())
                await write_private_file(sftp, path, with_setting(text, ACCEPT_VARIABLE, on), 0o600)
            await remote.zapvisor_json(pool, endpoint, record.zapvisor_path, ["apply"], timeout=300)
        finally:
            await pool.close()

    asyncio.run(write())
    orch.store.update_host(
        name,
        {"last_seen": utcnow()},
        actor=orch.actor,
        action="host_failover",
        detail={**admin._detail, "host": name, "accepts_failover": on},
    )
    deadline = time.monotonic() + wait
    while True:
        beat = orch.store.fleet_state().host(name)
        if beat is not None and beat.accepts_failover == on:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


def with_setting(env_text: str, variable: str, value: bool) -> str:
    """``env_text`` (a .env) with ``variable`` set to ``value``, the other lines kept."""
    lines = [ln for ln in env_text.splitlines() if ln.split("=", 1)[0].strip() != variable]
    lines.append(f"{variable}={dotenv_quote('true' if value else 'false')}")
    return "\n".join(lines) + "\n"


def kept_settings(env_text: str) -> dict[str, str]:
    """The host's own settings in its .env that an upgrade keeps (KEPT_VARIABLES),
    their names in any case as settings read them (the later line wins)."""
    from dotenv import dotenv_values

    found = {k.upper(): v for k, v in dotenv_values(stream=io.StringIO(env_text)).items()}
    return {k: v for k in KEPT_VARIABLES if (v := found.get(k))}
