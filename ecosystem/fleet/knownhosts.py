"""zapvisor's own known_hosts (in the state dir, 0600) and the trust decision for a key.

The file is in OpenSSH's format (`[address]:port keytype base64`), so `ssh -o
UserKnownHostsFile=…` and `ssh-keygen -R … -f …` work on it too. zapvisor never reads
the operator's ~/.ssh/known_hosts: what it trusts is what its operator trusted through it.

A key is trusted when it is the one recorded here for the address and port; on first
contact, when it matches the fingerprint the operator gave (`--host-key SHA256:…`), the
one the shared store recorded when the host was added (another control machine met it
first), or when the operator said so (`--trust`, or yes at the prompt). Anything else
is refused, before any authentication.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ecosystem.errors import Aborted, HostKeyRejected
from ecosystem.paths import StatePaths, write_private

if TYPE_CHECKING:
    from asyncssh import SSHKey

FILE_NAME = "known_hosts"


def known_hosts_path(paths: StatePaths) -> Path:
    return paths.home / FILE_NAME


def fingerprint(key: SSHKey) -> str:
    """`SHA256:…`, as `ssh-keygen -lf` prints it."""
    return str(key.get_fingerprint("sha256"))


def host_pattern(address: str, port: int) -> str:
    """The entry's name, as OpenSSH writes it: the bare address on port 22."""
    if port == 22:
        return address
    return f"[{address}]:{port}"


def normalise_fingerprint(text: str) -> str:
    """`SHA256:abc…` as given on a command line (a missing prefix or '=' padding is
    forgiven: ssh-keygen prints neither the same way everywhere)."""
    value = text.strip()
    if value.upper().startswith("SHA256:"):
        value = value[len("SHA256:") :]
    value = value.rstrip("=")
    if not value or len(value) != 43 or not all(c.isalnum() or c in "+/" for c in value):
        from ecosystem.errors import InvalidValue

        raise InvalidValue(
            f"--host-key {text!r} is not a SHA256 fingerprint (SHA256: and 43 characters, "
            "as `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` prints on the host)"
        )
    return f"SHA256:{value}"


class UnknownHostKey(Aborted):
    """First contact and nobody said yes: the caller may ask the operator and try again
    with the fingerprint it was shown."""

    def __init__(self, message: str, key_fingerprint: str) -> None:
        super().__init__(message)
        self.fingerprint = key_fingerprint


class KnownHosts:
    """The keys zapvisor trusts, per address and port."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _lines(self) -> list[str]:
        try:
            return self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []

    def lookup(self, address: str, port: int) -> list[SSHKey]:
        import asyncssh

        pattern = host_pattern(address, port)
        found = []
        for line in self._lines():
            fields = line.split()
            if len(fields) < 3 or fields[0].startswith(("#", "@")):
                continue
            if pattern in fields[0].split(","):
                with contextlib.suppress(asyncssh.KeyImportError):
                    found.append(asyncssh.import_public_key(f"{fields[1]} {fields[2]}"))
        return found

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path.with_suffix(".lock"), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def remember(self, address: str, port: int, key: SSHKey, *, replace: bool = False) -> None:
        """Record ``key`` for the address (with ``replace``, instead of what was there)."""
        pattern = host_pattern(address, port)
        entry = key.export_public_key("openssh").decode("ascii").split()
        line = f"{pattern} {entry[0]} {entry[1]}"
        with self._locked():
            lines = self._lines()
            if replace:
                lines = [ln for ln in lines if not _names(ln, pattern)]
            if line not in lines:
                lines.append(line)
            write_private(self.path, "\n".join(lines) + "\n")

    def forget(self, address: str, port: int) -> int:
        """Drop every key recorded for the address; how many lines went."""
        pattern = host_pattern(address, port)
        with self._locked():
            lines = self._lines()
            kept = [ln for ln in lines if not _names(ln, pattern)]
            if len(kept) != len(lines):
                write_private(self.path, "".join(f"{ln}\n" for ln in kept))
            return len(lines) - len(kept)


def _names(line: str, pattern: str) -> bool:
    fields = line.split()
    return bool(fields) and not fields[0].startswith("#") and pattern in fields[0].split(",")


@dataclass(frozen=True)
class KeyPolicy:
    """What the operator said about a host's key for this one connection."""

    trust_new: bool = False
    """`--trust`: accept the key met on first contact."""
    expected: str | None = None
    """`--host-key SHA256:…` (or the fingerprint the operator said yes to)."""
    store_key: str | None = None
    """The fingerprint the shared store recorded when the host was added."""
    replace: bool = False
    """`hosts trust`: a key other than the recorded one may replace it (only with
    ``expected``)."""


@dataclass
class KeyCheck:
    """One connection's host key decision; the SSH client calls :meth:`accept` during
    the key exchange and the connector explains a refusal afterwards."""

    name: str
    address: str
    port: int
    recorded: list[SSHKey]
    policy: KeyPolicy
    first_contact_flags: bool = False
    """Whether the command offers --trust/--host-key (`hosts add`)."""
    presented: SSHKey | None = None

    @property
    def algorithms(self) -> list[str]:
        """Ask the server for the kind of key recorded, so a server with several keys
        shows the one we know."""
        if self.policy.replace:
            return []
        return sorted({k.get_algorithm() for k in self.recorded})

    @property
    def recorded_fingerprints(self) -> list[str]:
        return [fingerprint(k) for k in self.recorded]

    def accept(self, key: SSHKey) -> bool:
        self.presented = key
        got = fingerprint(key)
        if self.policy.replace:
            return self.policy.expected == got
        if self.recorded:
            return got in self.recorded_fingerprints and self.policy.expected in (None, got)
        if self.policy.expected is not None:
            return self.policy.expected == got
        if self.policy.store_key is not None:
            return self.policy.store_key == got
        return self.policy.trust_new

    @property
    def is_new(self) -> bool:
        return (
            self.presented is not None
            and fingerprint(self.presented) not in self.recorded_fingerprints
        )

    def refusal(self, known_hosts: Path) -> HostKeyRejected | UnknownHostKey:
        """Why :meth:`accept` said no, with what to do about it."""
        if self.presented is None:
            return HostKeyRejected(
                f"{self.where} offered no host key of the kind recorded in {known_hosts}: "
                f"if {self.name} was reinstalled, check its new key and run "
                f"`zapvisor hosts trust {self.name} --host-key SHA256:…`"
            )
        got = fingerprint(self.presented)
        if self.policy.replace and self.policy.expected is not None:
            return HostKeyRejected(
                f"{self.where} presents the host key {got}, not the expected "
                f"{self.policy.expected}: nothing was changed"
            )
        if self.policy.replace:
            return UnknownHostKey(
                f"{self.where} presents the host key {got}: check it on the host "
                "(`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`) and pass "
                f"--host-key {got} to trust it (no terminal to ask on)",
                got,
            )
        if self.recorded:
            if got in self.recorded_fingerprints:
                return HostKeyRejected(
                    f"{self.where} presented the recorded host key {got}, not the expected "
                    f"{self.policy.expected}"
                )
            known = ", ".join(self.recorded_fingerprints)
            return HostKeyRejected(
                f"the host key of {self.where} CHANGED: {known_hosts} has {known}, it now "
                f"presents {got}. Someone may be intercepting the connection; if "
                f"{self.name} was reinstalled, check the new key on its console "
                "(`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`) and run "
                f"`zapvisor hosts trust {self.name} --host-key {got}`"
            )
        if self.policy.expected is not None:
            return HostKeyRejected(
                f"{self.where} presents the host key {got}, not the expected "
                f"{self.policy.expected}: nothing was changed"
            )
        if self.policy.store_key is not None:
            return HostKeyRejected(
                f"the host key of {self.where} CHANGED: the fleet's store recorded "
                f"{self.policy.store_key} when {self.name} was added, it now presents {got}. "
                f"If {self.name} was reinstalled, check the new key on its console and run "
                f"`zapvisor hosts trust {self.name} --host-key {got}`"
            )
        check = "check it on the host (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`)"
        if self.first_contact_flags:
            return UnknownHostKey(
                f"first contact with {self.where}: its host key is {got}; {check} and pass "
                f"--host-key {got}, or --trust to accept it (no terminal to ask on)",
                got,
            )
        return UnknownHostKey(
            f"this machine never met {self.name} ({self.where}), whose host key is {got}: "
            f"{check} and run `zapvisor hosts trust {self.name} --host-key {got}`",
            got,
        )

    @property
    def where(self) -> str:
        return host_pattern(self.address, self.port)
