"""A host of the fleet as the shared store keeps it, and the rules for what may be one.

Pure data: importing this costs no SSH library, so the stores and the CLI's fast paths
can use it.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from pathlib import Path

from ecosystem.errors import HostBusy, HostExists, HostNotFound, InvalidName, InvalidValue
from ecosystem.record import Record, RecordError, record

DEFAULT_SSH_PORT = 22
REMOTE_DIR = ".zapvisor"
"""Where a bootstrap installs zapvisor on a host, under the SSH user's home: the
venv(s), the settings (`.env`) and the `zapvisor` wrapper that reads them."""

_HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_USER = re.compile(r"[a-z_][a-z0-9_.-]{0,31}", re.IGNORECASE)
_DNS = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)


@record
class HostRecord(Record):
    """One row of the store's `hosts` table (migration 0005)."""

    name: str
    """The host's ZAPVISOR_HOST_ID: its sessions' `host` in the store."""
    address: str
    """What the control side connects to: a DNS name or an IP address."""
    ssh_user: str
    ssh_port: int = DEFAULT_SSH_PORT
    identity_file: str | None = None
    """A private key file on the control machine (a path only, never the key)."""
    base_port: int
    max_sessions: int
    zapvisor_path: str
    """The zapvisor command on the host (absolute path)."""
    version: str | None = None
    """The zapvisor version the host last reported."""
    host_key: str | None = None
    """The SSH host key's fingerprint (SHA256:…) trusted when the host was added: a
    second control machine meeting the host checks the key against it."""
    added_at: datetime
    added_by: str = ""
    last_seen: datetime | None = None

    @property
    def target(self) -> str:
        """`user@address[:port]`, as an operator writes it."""
        return format_target(self.ssh_user, self.address, self.ssh_port)


@record
class NewHost(Record):
    """What `zapvisor hosts add` records (the store adds the times)."""

    name: str
    address: str
    ssh_user: str
    ssh_port: int = DEFAULT_SSH_PORT
    identity_file: str | None = None
    base_port: int
    max_sessions: int
    zapvisor_path: str
    version: str | None = None
    host_key: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.ssh_port <= 65535:
            raise RecordError(f"ssh_port must be 1-65535, got {self.ssh_port}")
        if not 1024 <= self.base_port <= 65535:
            raise RecordError(f"base_port must be 1024-65535, got {self.base_port}")
        if not 1 <= self.max_sessions <= 2000:
            raise RecordError(f"max_sessions must be 1-2000, got {self.max_sessions}")


HOST_CHANGES = frozenset(
    {
        "address",
        "ssh_user",
        "ssh_port",
        "identity_file",
        "base_port",
        "max_sessions",
        "zapvisor_path",
        "version",
        "host_key",
        "last_seen",
    }
)
"""The fields `update_host` may change (the name never changes: sessions refer to it)."""


def validate_host_name(name: str) -> str:
    if not _HOST_NAME.fullmatch(name or ""):
        raise InvalidName(
            f"invalid host name {name!r}: 1-63 letters, digits, '.', '-' or '_', starting "
            "with a letter or a digit (it becomes that host's ZAPVISOR_HOST_ID)"
        )
    return name


def parse_target(target: str) -> tuple[str, str]:
    """`USER@ADDRESS` → (user, address); the address is a DNS name, an IPv4 address or
    an IPv6 address (bare or in brackets). The port is a separate option."""
    user, sep, address = (target or "").rpartition("@")
    if not sep or not user or not address:
        raise InvalidValue(f"invalid SSH target {target!r}: write it as USER@ADDRESS")
    if not _USER.fullmatch(user):
        raise InvalidValue(f"invalid SSH user {user!r} in {target!r}")
    if address.startswith("[") and address.endswith("]"):
        address = address[1:-1]
    try:
        return user, str(ipaddress.ip_address(address))
    except ValueError:
        pass
    if ":" in address:
        raise InvalidValue(f"invalid address {address!r} in {target!r}: give the port with --port")
    if not _DNS.fullmatch(address):
        raise InvalidValue(f"invalid address {address!r} in {target!r}: not a host name or IP")
    return user, address.rstrip(".")


def format_target(user: str, address: str, port: int) -> str:
    """`user@address[:port]` (an IPv6 address in brackets, port 22 left out)."""
    shown = f"[{address}]" if ":" in address else address
    return f"{user}@{shown}" + ("" if port == DEFAULT_SSH_PORT else f":{port}")


def parse_target_port(target: str) -> tuple[str, str, int]:
    """`USER@ADDRESS[:PORT]` (an IPv6 address with a port in brackets) → (user,
    address, port): what ``format_target`` writes, read back."""
    user, sep, rest = (target or "").rpartition("@")
    address, port = rest, str(DEFAULT_SSH_PORT)
    if rest.startswith("[") and "]:" in rest:
        address, port = rest.rsplit(":", 1)
    elif rest.count(":") == 1:
        address, port = rest.split(":")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise InvalidValue(f"invalid SSH port {port!r} in {target!r}: 1-65535")
    user, address = parse_target(f"{user}{sep}{address}")
    return user, address, int(port)


def sqlite_refusal(home: Path) -> str:
    """Why a fleet cannot be made on a SQLite store, and what to do."""
    return (
        "a fleet shares one store and this machine uses SQLite "
        f"({home / 'zapvisor.db'}), which no other host can reach: move to "
        "PostgreSQL or Supabase first (`zapvisor db copy --to postgres`)"
    )


def check_port_range(base_port: int, max_sessions: int) -> None:
    if not 1024 <= base_port <= 65535:
        raise InvalidValue(f"--base-port must be 1024-65535, got {base_port}")
    if not 1 <= max_sessions <= 2000:
        raise InvalidValue(f"--max-sessions must be 1-2000, got {max_sessions}")
    if base_port + max_sessions - 1 > 65535:
        raise InvalidValue(
            f"--base-port {base_port} with --max-sessions {max_sessions} goes past port 65535"
        )


# The contract's errors, worded once for every store.


def host_exists(name: str) -> HostExists:
    return HostExists(f"a host named {name!r} is already in the fleet (see `zapvisor hosts list`)")


def host_not_found(name: str) -> HostNotFound:
    return HostNotFound(f"no host named {name!r} in the fleet (see `zapvisor hosts list`)")


def host_busy(name: str, sessions: list[str]) -> HostBusy:
    shown = ", ".join(sessions[:5]) + (", …" if len(sessions) > 5 else "")
    return HostBusy(
        f"host {name!r} still holds {len(sessions)} session(s) ({shown}): delete them "
        "first (`zapvisor delete NAME`), then remove the host"
    )
