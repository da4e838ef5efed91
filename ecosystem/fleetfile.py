"""The fleet file (`zapvisor.toml`): the hosts and sessions an operator wants, declared.

    [hosts.vps2]
    target = "deploy@203.0.113.7:2222"   # USER@ADDRESS[:SSH PORT]
    base_port = 3001
    max_sessions = 40
    host_key = "SHA256:…"              # its SSH key's fingerprint (public, not a secret)
    identity = "/root/.ssh/id_fleet"   # optional: a key FILE here (a path, never the key)
    accepts_failover = true            # optional: takes over sessions of silent hosts

    [sessions.cliente-001]
    host = "vps2"                      # optional: this host
    connector = "neonize"              # optional: neonize
    description = "Loja centro"
    webhook_url = "https://hooks.example/wa"
    webhook_events = ["message_received", "message_ack"]   # optional: all
    state = "running"                  # or "stopped"
    auth = "store"                     # optional: where its WhatsApp auth lives (or "local")
    failover = true                    # optional: another host takes it over (auth store)
    [sessions.cliente-001.ai_config]      # checked as `zapvisor config` checks it
    enabled = true
    model = "gpt-4o-mini"
    [sessions.cliente-001.timing_config]
    reply_delay = [2, 5]

A value may be a reference instead, ``webhook_url = { env = "HOOK_LOJA" }``: read from
that environment variable, so a URL that carries a token never sits in the file.
A file without any [hosts.NAME] table leaves the fleet's hosts alone.

Anything wrong (syntax, an unknown key, a bad name or value, a missing variable) refuses
the whole file, naming the line.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

from ecosystem.errors import InvalidValue, ZapvisorError
from ecosystem.fleet.knownhosts import normalise_fingerprint
from ecosystem.fleet.records import (
    check_port_range,
    format_target,
    parse_target_port,
    validate_host_name,
)
from ecosystem.lease import AuthKind
from ecosystem.models import SessionFields
from ecosystem.names import name_problem
from ecosystem.states import DesiredState

SESSION_KEYS = (
    "host",
    "connector",
    "description",
    "webhook_url",
    "webhook_events",
    "state",
    "auth",
    "failover",
    "ai_config",
    "timing_config",
)
HOST_KEYS = ("target", "base_port", "max_sessions", "host_key", "identity", "accepts_failover")
FIELDS = ("connector", "description", "webhook_url", "webhook_events", "ai_config", "timing_config")
"""The session fields a file declares (what `configure` changes)."""


class FleetFileError(ZapvisorError):
    """A fleet file that cannot be used: nothing was planned or changed."""

    exit_code = 65


@dataclass(frozen=True)
class Declared:
    """One session as the file wants it."""

    name: str
    host: str | None
    state: DesiredState
    fields: dict[str, Any] = field(default_factory=dict)
    """Every key of FIELDS, validated (absent keys at their defaults)."""
    line: int = 0
    auth: AuthKind | None = None
    """None: not declared (a new session's is chosen as `create` chooses it)."""
    failover: bool | None = None
    """None: not declared (left as it is; on for a new session)."""
    key_lines: dict[str, int] = field(default_factory=dict)

    def at(self, key: str) -> int:
        """The line of ``key`` in the file (the table's when it is not there)."""
        return self.key_lines.get(key, self.line)


@dataclass(frozen=True)
class DeclaredHost:
    """One host of the fleet as the file wants it."""

    name: str
    user: str
    address: str
    ssh_port: int
    base_port: int
    max_sessions: int
    host_key: str | None
    """None: not pinned by the file (whatever key the fleet trusts)."""
    identity: str | None
    line: int = 0
    accepts_failover: bool | None = None
    """None: not declared (whatever the host's ZAPVISOR_ACCEPT_FAILOVER says)."""

    @property
    def target(self) -> str:
        return format_target(self.user, self.address, self.ssh_port)


@dataclass(frozen=True)
class FleetFile:
    sessions: list[Declared]
    hosts: list[DeclaredHost] | None
    """None when the file has no [hosts.NAME] table: the fleet's hosts are left alone."""


def parse(text: str, where: str = "the file") -> FleetFile:
    """The hosts and sessions a fleet file declares, every value checked."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FleetFileError(f"{where}: {exc}") from None
    lines = _key_lines(text)
    unknown = sorted(set(data) - {"sessions", "hosts"})
    if unknown:
        key = unknown[0]
        raise FleetFileError(
            f"{where}, line {lines.get((key,), 0)}: unknown key {key!r} "
            "(a fleet file has [hosts.NAME] and [sessions.NAME] tables)"
        )
    hosts = None
    if "hosts" in data:
        hosts = _hosts(data["hosts"], lines, where)
    sessions = data.get("sessions", {})
    if not isinstance(sessions, dict):
        raise FleetFileError(f"{where}: `sessions` must be tables, [sessions.NAME]")
    out = []
    for name, body in sessions.items():
        line = lines.get(("sessions", name), 0)
        at = f"{where}, line {line}"
        problem = name_problem(name)
        if problem:
            raise FleetFileError(f"{at}: session {name!r}: {problem}")
        _check_table("session", name, body, SESSION_KEYS, lines, where)
        out.append(_declared(name, body, lines, where, line))
    return FleetFile(out, hosts)


def _hosts(tables: Any, lines: dict[tuple[str, ...], int], where: str) -> list[DeclaredHost]:
    if not isinstance(tables, dict):
        raise FleetFileError(f"{where}: `hosts` must be tables, [hosts.NAME]")
    out: list[DeclaredHost] = []
    for name, body in tables.items():
        line = lines.get(("hosts", name), 0)
        at = f"{where}, line {line}"
        _check_table("host", name, body, HOST_KEYS, lines, where)
        values = {
            k: _resolve(v, f"{name}.{k}", f"{where}, line {lines.get(('hosts', name, k), line)}")
            for k, v in body.items()
        }
        missing = [k for k in ("target", "base_port", "max_sessions") if k not in values]
        if missing:
            raise FleetFileError(f"{at}: host {name} needs {', '.join(missing)}")
        try:
            validate_host_name(name)
            for key in ("target", "host_key", "identity"):
                if key in values and not isinstance(values[key], str):
                    raise InvalidValue(f"{key} must be a string")
            for key in ("base_port", "max_sessions"):
                if not isinstance(values[key], int) or isinstance(values[key], bool):
                    raise InvalidValue(f"{key} must be a whole number")
            user, address, port = parse_target_port(values["target"])
            check_port_range(values["base_port"], values["max_sessions"])
            pinned = values.get("host_key")
            host_key = normalise_fingerprint(pinned) if pinned else None
        except ZapvisorError as exc:
            said = str(exc)
            for flag in ("--base-port", "--max-sessions", "--host-key"):
                said = said.replace(flag, flag[2:].replace("-", "_"))
            raise FleetFileError(f"{at}: host {name}: {said}") from None
        accepts = values.get("accepts_failover")
        if accepts is not None and not isinstance(accepts, bool):
            raise FleetFileError(
                f"{where}, line {lines.get(('hosts', name, 'accepts_failover'), line)}: host "
                f"{name}: accepts_failover is {accepts!r}: true or false"
            )
        identity = values.get("identity") or None
        ports = values["base_port"], values["max_sessions"]
        made = DeclaredHost(name, user, address, port, *ports, host_key, identity, line, accepts)
        _check_clash(made, out, where)
        out.append(made)
    return out


def _check_clash(h: DeclaredHost, before: list[DeclaredHost], where: str) -> None:
    """Two hosts of one file on one machine: the same SSH login, or session ports that
    overlap (their runners would fight over the same ports)."""
    for other in before:
        if other.address != h.address:
            continue
        if (other.user, other.ssh_port) == (h.user, h.ssh_port):
            raise FleetFileError(
                f"{where}, line {h.line}: host {h.name}: {h.target} is already host "
                f"{other.name} (line {other.line}): one machine login, one host"
            )
        mine = range(h.base_port, h.base_port + h.max_sessions)
        theirs = range(other.base_port, other.base_port + other.max_sessions)
        if mine.start < theirs.stop and theirs.start < mine.stop:
            raise FleetFileError(
                f"{where}, line {h.line}: host {h.name}: ports {mine.start}-{mine.stop - 1} "
                f"clash with host {other.name}'s {theirs.start}-{theirs.stop - 1} (line "
                f"{other.line}) on {h.address}: give one a base_port past the other's range"
            )


def _check_table(
    kind: str,
    name: str,
    body: Any,
    keys: tuple[str, ...],
    lines: dict[tuple[str, ...], int],
    where: str,
) -> None:
    line = lines.get((f"{kind}s", name), 0)
    if not isinstance(body, dict):
        raise FleetFileError(
            f"{where}, line {line}: {kind} {name} must be a table, [{kind}s.{name}]"
        )
    extra = sorted(set(body) - set(keys))
    if extra:
        at = f"{where}, line {lines.get((f'{kind}s', name, extra[0]), line)}"
        raise FleetFileError(
            f"{at}: unknown key {extra[0]!r} in {kind} {name} (known: {', '.join(keys)})"
        )


def _resolve(value: Any, what: str, at: str) -> Any:
    """A value, or the environment variable a ``{ env = "NAME" }`` reference names."""
    if isinstance(value, dict) and set(value) == {"env"}:
        var = str(value["env"])
        if var not in os.environ:
            raise FleetFileError(f"{at}: {what} refers to ${var}, which is not set")
        return os.environ[var]
    return value


def _declared(
    name: str, body: dict[str, Any], lines: dict[tuple[str, ...], int], where: str, line: int
) -> Declared:
    values: dict[str, Any] = {}
    for key, value in body.items():
        at = f"{where}, line {lines.get(('sessions', name, key), line)}"
        if key not in ("ai_config", "timing_config"):
            value = _resolve(value, f"{name}.{key}", at)
        values[key] = value
    at = f"{where}, line {line}"
    auth, failover = _failover(name, values, lines, where, line)
    state = values.pop("state", DesiredState.RUNNING)
    try:
        desired = DesiredState(state)
    except ValueError:
        raise FleetFileError(f"{at}: {name}.state is {state!r}: running or stopped") from None
    host = values.pop("host", None)
    if host is not None and (not isinstance(host, str) or not host):
        raise FleetFileError(f"{at}: {name}.host must be a host's name")
    try:
        fields = SessionFields.model_validate(values)
    except ValueError as exc:
        raise FleetFileError(f"{at}: session {name}: {_first(exc)}") from None
    where_keys = {k: lines.get(("sessions", name, k), line) for k in body}
    return Declared(name, host, desired, fields.model_dump(), line, auth, failover, where_keys)


def _failover(
    name: str, values: dict[str, Any], lines: dict[tuple[str, ...], int], where: str, line: int
) -> tuple[AuthKind | None, bool | None]:
    """A session's `auth` and `failover`, taken out of ``values`` and checked."""
    auth, failover = values.pop("auth", None), values.pop("failover", None)
    auth_at = f"{where}, line {lines.get(('sessions', name, 'auth'), line)}"
    failover_at = f"{where}, line {lines.get(('sessions', name, 'failover'), line)}"
    if auth is not None and auth not in tuple(AuthKind):
        raise FleetFileError(
            f"{auth_at}: {name}.auth is {auth!r}: local (files on its host) or store "
            "(in the fleet's store, so it can fail over)"
        )
    if failover is not None and not isinstance(failover, bool):
        raise FleetFileError(f"{failover_at}: {name}.failover is {failover!r}: true or false")
    kind = AuthKind(auth) if auth is not None else None
    if kind == AuthKind.LOCAL and failover:
        raise FleetFileError(
            f"{failover_at}: {name} has auth local and failover on: its WhatsApp auth is in "
            'files on its host, so no other host can take it over: write auth = "store" '
            "or failover = false"
        )
    return kind, failover


def _first(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        msg = str(first.get("msg", exc)).removeprefix("Value error, ")
        # the bot's configs name their own field (`ai_config.temperature: …`)
        return f"{where}: {msg}" if where and not msg.startswith(f"{where}") else msg
    return str(exc)


_HEADER = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'. ]+?)\s*=")


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Where each table and key is, for messages: (path…) → line number (1-based)."""
    found: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, raw in enumerate(text.splitlines(), 1):
        header = _HEADER.match(raw)
        if header and not raw.lstrip().startswith("[["):
            table = tuple(p.strip().strip("\"'") for p in header.group(1).split("."))
            for i in range(1, len(table) + 1):
                found.setdefault(table[:i], number)
            continue
        key = _KEY.match(raw)
        if key:
            path = (*table, *(p.strip().strip("\"'") for p in key.group(1).split(".")))
            for i in range(1, len(path) + 1):
                found.setdefault(path[:i], number)
    return found
