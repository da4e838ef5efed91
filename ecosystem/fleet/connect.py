"""Making one SSH connection to a host: the key check, key-only authentication, the
keepalives, and every way it can fail turned into one line an operator can act on.

A host is reached as its SSH user with a key (an identity file, ssh-agent, or the
user's default keys); passwords are never tried, nothing is read from ~/.ssh/config,
and the host key is checked against zapvisor's own known_hosts (knownhosts.py) before
any authentication.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import asyncssh

from ecosystem.errors import HostAuthRefused, HostUnreachable, InvalidValue
from ecosystem.fleet.knownhosts import KeyCheck, KeyPolicy, KnownHosts, known_hosts_path
from ecosystem.fleet.records import DEFAULT_SSH_PORT, HostRecord
from ecosystem.paths import StatePaths

if TYPE_CHECKING:
    from asyncssh import SSHClientConnection

CONNECT_TIMEOUT = 5.0
"""Seconds for TCP, the key exchange and authentication together."""
KEEPALIVE_INTERVAL = 2.0
KEEPALIVE_COUNT_MAX = 3
"""Unanswered keepalives before the connection counts as dead (about 6 s of silence)."""


@dataclass(frozen=True)
class Endpoint:
    """What it takes to reach a host: a registered one, or one being added."""

    name: str
    address: str
    user: str
    port: int = DEFAULT_SSH_PORT
    identity_file: str | None = None
    store_key: str | None = None
    """The host key fingerprint the fleet's store recorded (HostRecord.host_key)."""

    @classmethod
    def of(cls, host: HostRecord) -> Endpoint:
        return cls(
            name=host.name,
            address=host.address,
            user=host.ssh_user,
            port=host.ssh_port,
            identity_file=host.identity_file,
            store_key=host.host_key,
        )

    @property
    def where(self) -> str:
        return f"{self.address}:{self.port}"


class _Client(asyncssh.SSHClient):
    """Decides on the host key (before any authentication) and reports a lost link."""

    def __init__(self, check: KeyCheck, on_lost: Callable[[Exception | None], None]) -> None:
        self._check = check
        self._on_lost = on_lost

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        return self._check.accept(key)

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_lost(exc)


def _load_identity(path: str) -> asyncssh.SSHKey:
    try:
        return asyncssh.read_private_key(Path(path).expanduser())
    except FileNotFoundError:
        raise InvalidValue(f"identity file {path} does not exist") from None
    except OSError as exc:
        raise InvalidValue(f"cannot read identity file {path}: {exc.strerror or exc}") from None
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise InvalidValue(
            f"cannot use identity file {path}: {exc}; a key with a passphrase must be loaded "
            f"into ssh-agent instead (`ssh-add {path}`)"
        ) from None


async def connect(
    endpoint: Endpoint,
    paths: StatePaths,
    *,
    policy: KeyPolicy | None = None,
    first_contact_flags: bool = False,
    timeout: float = CONNECT_TIMEOUT,
    keepalive_interval: float = KEEPALIVE_INTERVAL,
    on_lost: Callable[[Exception | None], None] | None = None,
    remember: bool = True,
) -> SSHClientConnection:
    """A new authenticated connection, or the contract's error saying why not (one
    line: DNS, refused, silent, not SSH, host key, authentication). A key met for the
    first time is recorded in known_hosts once authentication passed (``remember``
    False: the caller records it when its own work succeeded)."""
    known = KnownHosts(known_hosts_path(paths))
    given = policy or KeyPolicy()
    if given.store_key is None and endpoint.store_key is not None:
        given = KeyPolicy(given.trust_new, given.expected, endpoint.store_key, given.replace)
    check = KeyCheck(
        endpoint.name,
        endpoint.address,
        endpoint.port,
        known.lookup(endpoint.address, endpoint.port),
        given,
        first_contact_flags,
    )
    keys: Sequence[asyncssh.SSHKey] | tuple[()] = ()
    if endpoint.identity_file:
        keys = [_load_identity(endpoint.identity_file)]
    lost = on_lost or (lambda exc: None)
    try:
        conn = await asyncio.wait_for(
            asyncssh.connect(
                endpoint.address,
                endpoint.port,
                username=endpoint.user,
                client_factory=lambda: _Client(check, lost),
                known_hosts=([], [], []),
                server_host_key_algs=check.algorithms or (),
                client_keys=keys,
                config=None,
                password_auth=False,
                kbdint_auth=False,
                gss_auth=False,
                host_based_auth=False,
                agent_forwarding=False,
                connect_timeout=timeout,
                login_timeout=timeout,
                keepalive_interval=keepalive_interval,
                keepalive_count_max=KEEPALIVE_COUNT_MAX,
            ),
            timeout + 1,
        )
    except asyncssh.HostKeyNotVerifiable:
        raise check.refusal(known.path) from None
    except BaseException as exc:
        raise connect_error(endpoint, exc, timeout) from None
    if not remember:
        return conn
    if given.replace:
        assert check.presented is not None
        known.remember(endpoint.address, endpoint.port, check.presented, replace=True)
    elif check.is_new:
        assert check.presented is not None
        known.remember(endpoint.address, endpoint.port, check.presented)
    return conn


def connect_error(endpoint: Endpoint, exc: BaseException, timeout: float) -> BaseException:
    """The one-line error an operator can act on, for a failed connection."""
    where = endpoint.where
    if isinstance(exc, InvalidValue | asyncio.CancelledError | KeyboardInterrupt):
        return exc
    if isinstance(exc, socket.gaierror):
        return HostUnreachable(
            f"cannot resolve {endpoint.address!r} (DNS: {exc.strerror or exc}): check the "
            "address, or give an IP address"
        )
    if isinstance(exc, ConnectionRefusedError):
        return HostUnreachable(
            f"{where} refused the connection: no SSH server listens there (check --port, "
            "and that sshd runs)"
        )
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return HostUnreachable(
            f"{where} did not answer within {timeout:g} s: the host is down, a firewall "
            "drops the packets, or the port is not SSH's"
        )
    if isinstance(exc, asyncssh.PermissionDenied):
        tried = f"the identity {endpoint.identity_file}" if endpoint.identity_file else None
        tried = tried or "ssh-agent and the default keys (~/.ssh/id_*)"
        return HostAuthRefused(
            f"{endpoint.user}@{where} refused {tried}: add the public key to "
            f"~{endpoint.user}/.ssh/authorized_keys there (passwords are never used)"
        )
    if isinstance(exc, asyncssh.DisconnectError):
        hint = ""
        if exc.code in (
            asyncssh.DISC_PROTOCOL_ERROR,
            asyncssh.DISC_PROTOCOL_VERSION_NOT_SUPPORTED,
        ):
            hint = " (is that port an SSH server? check --port)"
        return HostUnreachable(f"SSH to {where} failed: {exc.reason}{hint}")
    if isinstance(exc, OSError):
        return HostUnreachable(f"{where} is unreachable: {exc.strerror or exc}")
    if isinstance(exc, asyncssh.Error | ValueError):
        return HostUnreachable(f"SSH to {where} failed: {exc}")
    return exc
