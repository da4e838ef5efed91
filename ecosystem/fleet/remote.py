"""What the control side runs on a host over its SSH connection: a look at the machine
(probe) and zapvisor commands with `--json`, their errors re-raised as one line.

Until the long-lived agent (`zapvisor agent --stdio`) answers these, each is one process
on the host per call; the agent replaces them for the live view.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import Any

from ecosystem.errors import HostError, HostUnreachable, RemoteZapvisorError
from ecosystem.fleet import layout
from ecosystem.fleet.connect import Endpoint
from ecosystem.fleet.ssh import RemoteResult, SSHPool, remote_command

MIN_PYTHON = (3, 11)
COMMAND_TIMEOUT = 60.0
"""Seconds a zapvisor command on a host may take (it may start supervisord there)."""

_PROBE = r"""
echo "home=$HOME"
echo "uid=$(id -u)"
for p in python3.13 python3.12 python3.11 python3; do
    c=$(command -v "$p" 2>/dev/null) || continue
    v=$("$c" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null) || continue
    if "$c" -c 'import venv, ensurepip' >/dev/null 2>&1; then ok=1; else ok=0; fi
    echo "python=$ok $v $c"
done
d="$HOME/.zapvisor"; [ -d "$d" ] || d="$HOME"
df -Pk "$d" 2>/dev/null | awk -v d="$d" 'NR==2 {print "free_kb=" $4; print "free_dir=" d}'
z="$HOME/.zapvisor/zapvisor"
if [ -x "$z" ]; then echo "managed=$("$z" --version 2>/dev/null | head -n 1)"; fi
if [ -d /run/systemd/system ]; then echo "systemd=1"; fi
echo "end=1"
"""


@dataclass(frozen=True)
class Python:
    path: str
    version: tuple[int, ...]
    has_venv: bool

    @property
    def shown(self) -> str:
        venv = "" if self.has_venv else " without venv"
        return f"{self.path} {'.'.join(map(str, self.version))}{venv}"


@dataclass
class Probe:
    """What a host has, seen over SSH before anything is changed there."""

    home: str
    uid: int
    pythons: list[Python] = field(default_factory=list)
    free_kb: int | None = None
    free_dir: str = ""
    managed_version: str | None = None
    """The version of ~/.zapvisor/zapvisor, None when there is none (or it fails)."""
    systemd: bool = False

    @property
    def root(self) -> str:
        return layout.remote_root(self.home)

    @property
    def zapvisor(self) -> str:
        return layout.wrapper_path(self.root)

    def python(self) -> Python | None:
        """The first python3 new enough to hold zapvisor's venv."""
        for candidate in self.pythons:
            if candidate.version >= MIN_PYTHON and candidate.has_venv:
                return candidate
        return None


def parse_probe(text: str) -> Probe:
    values: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values.setdefault(key.strip(), []).append(value.strip())
    if "end" not in values or "home" not in values:
        raise HostError(f"the host answered the probe with something else: {text[:200]!r}")
    probe = Probe(home=values["home"][0], uid=int(values.get("uid", ["-1"])[0] or -1))
    for entry in values.get("python", []):
        ok, version, path = ([*entry.split(" ", 2), "", ""])[:3]
        try:
            numbers = tuple(int(x) for x in version.split("."))
        except ValueError:
            continue
        probe.pythons.append(Python(path, numbers, ok == "1"))
    if values.get("free_kb", [""])[0].isdigit():
        probe.free_kb = int(values["free_kb"][0])
        probe.free_dir = values.get("free_dir", [""])[0]
    managed = values.get("managed", [""])[0]
    if managed.startswith("zapvisor "):
        probe.managed_version = managed.split()[1]
    probe.systemd = "systemd" in values
    return probe


async def probe(pool: SSHPool, endpoint: Endpoint, *, timeout: float = COMMAND_TIMEOUT) -> Probe:
    found = await pool.run(endpoint, f"sh -c {shlex.quote(_PROBE)}", timeout=timeout)
    return parse_probe(found.stdout)


def remote_error(name: str, argv: list[str], result: RemoteResult) -> HostError:
    """A failed zapvisor command on a host, as one line with its own exit code."""
    if result.exit_status == 127:
        return RemoteZapvisorError(
            f"zapvisor is not installed on {name} any more (`{argv[0]}` not found): "
            f"`zapvisor hosts upgrade {name}` installs it again"
        )
    lines = [ln.strip() for ln in result.stderr.splitlines() if ln.strip()]
    said = next((ln for ln in reversed(lines) if ln.startswith("zapvisor: error:")), None)
    said = (said or (lines[-1] if lines else f"exit status {result.exit_status}")).removeprefix(
        "zapvisor: error: "
    )
    error = RemoteZapvisorError(f"on {name}: {said}")
    if 0 < result.exit_status < 128:
        error.exit_code = result.exit_status
    return error


async def zapvisor(
    pool: SSHPool,
    endpoint: Endpoint,
    zapvisor_path: str,
    argv: list[str],
    *,
    timeout: float = COMMAND_TIMEOUT,
    ok_codes: tuple[int, ...] = (0,),
) -> RemoteResult:
    """Run `zapvisor ARGV` on the host; a failure (exit status not in ``ok_codes``) is
    raised as the host's own one-line error."""
    result = await pool.run(endpoint, remote_command(zapvisor_path, argv), timeout=timeout)
    if result.exit_status not in ok_codes:
        raise remote_error(endpoint.name, [zapvisor_path, *argv], result)
    return result


async def zapvisor_json(
    pool: SSHPool,
    endpoint: Endpoint,
    zapvisor_path: str,
    argv: list[str],
    *,
    timeout: float = COMMAND_TIMEOUT,
    ok_codes: tuple[int, ...] = (0,),
) -> Any:
    result = await zapvisor(
        pool, endpoint, zapvisor_path, [*argv, "--json"], timeout=timeout, ok_codes=ok_codes
    )
    try:
        return json.loads(result.stdout)
    except ValueError:
        raise HostUnreachable(
            f"{endpoint.name} answered `zapvisor {' '.join(argv)} --json` with no JSON: "
            f"{result.stdout[:120]!r}"
        ) from None
