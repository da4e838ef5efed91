"""Installing this machine's zapvisor on a host, over the host's SSH connection.

A wheel of the installed package (wheel.py) goes over SFTP into ~/.zapvisor, a new venv
is made there from the host's own python3 (3.11 or newer) and pip installs the wheel
with its dependencies from the host's package index. Only then do the host's `.env`
(its host id, ports and the fleet's store: 0600, written over SFTP, never on a command
line) and the `zapvisor` wrapper change, and the `venv` symlink switches to the new
venv in one rename: an install that fails half way (no python, a full disk, no network
to PyPI) leaves the host as it was. The previous venv is kept (its runners may still
run from it until `zapvisor apply` restarts them); older ones are removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
import secrets
import shlex
import tempfile
from collections.abc import Callable
from pathlib import Path

import asyncssh

from ecosystem.errors import HostError, RemoteZapvisorError
from ecosystem.fleet import layout, wheel
from ecosystem.fleet.connect import Endpoint
from ecosystem.fleet.remote import MIN_PYTHON, Probe
from ecosystem.fleet.ssh import SSHPool

NEEDED_MB = 300
"""Room an install needs on the host (the venv with its dependencies is ~220 MB)."""
INSTALL_TIMEOUT = 900.0
"""pip downloads the dependencies on the host: allow a slow mirror."""

Progress = Callable[[str], None]


def _disk_full(name: str, where: str, free_mb: float) -> RemoteZapvisorError:
    error = RemoteZapvisorError(
        f"{name} has {free_mb:.0f} MB free in {where}; installing zapvisor there needs about "
        f"{NEEDED_MB} MB: free some space (or grow the disk) and run the command again "
        "(nothing was changed)"
    )
    error.exit_code = 73  # EX_CANTCREAT
    return error


def check_can_install(name: str, probe: Probe) -> str:
    """The python3 to make the venv with, or the one-line reason the host cannot take
    an install (nothing changed there)."""
    python = probe.python()
    if python is None:
        found = ", ".join(p.shown for p in probe.pythons) or "none"
        wanted = ".".join(map(str, MIN_PYTHON))
        raise RemoteZapvisorError(
            f"{name} has no python3 {wanted} or newer with venv (found: {found}): install "
            "them there (Debian/Ubuntu: `apt-get install python3 python3-venv`) and run the "
            "command again"
        )
    if probe.free_kb is not None and probe.free_kb < NEEDED_MB * 1024:
        raise _disk_full(name, probe.free_dir or probe.home, probe.free_kb / 1024)
    return python.path


async def write_private_file(sftp: asyncssh.SFTPClient, path: str, text: str, mode: int) -> None:
    """Write through a temp file created with ``mode`` (never readable by others, not
    even for an instant), then rename it over ``path``."""
    tmp = f"{path}.{secrets.token_hex(4)}.tmp"
    attrs = asyncssh.SFTPAttrs(permissions=mode)
    try:
        async with sftp.open(tmp, "w", attrs) as fh:
            await fh.write(text)
        await sftp.chmod(tmp, mode)
        await sftp.posix_rename(tmp, path)
    except BaseException:
        with contextlib.suppress(asyncssh.SFTPError, OSError):
            await sftp.remove(tmp)
        raise


async def write_settings(
    pool: SSHPool, endpoint: Endpoint, probe: Probe, env_text: str, *, wrapper: bool = True
) -> None:
    """The host's .env (0600) and, with ``wrapper``, the zapvisor wrapper (0700)."""
    async with pool.sftp(endpoint, timeout=30) as sftp:
        await sftp.makedirs(probe.root, exist_ok=True)
        await sftp.chmod(probe.root, 0o700)
        await write_private_file(sftp, posixpath.join(probe.root, ".env"), env_text, 0o600)
        if wrapper:
            await write_private_file(sftp, probe.zapvisor, layout.WRAPPER, 0o700)


async def read_host_env(pool: SSHPool, endpoint: Endpoint, probe: Probe) -> str:
    """The host's current .env ("" when it has none): its own settings in it are kept
    across installs (see host_changes.kept_settings and layout.hand_lines)."""
    try:
        async with (
            pool.sftp(endpoint, timeout=30) as sftp,
            sftp.open(posixpath.join(probe.root, ".env"), "r") as fh,
        ):
            return str(await fh.read())
    except (asyncssh.SFTPError, OSError):
        return ""


async def install(
    pool: SSHPool,
    endpoint: Endpoint,
    probe: Probe,
    env_text: str,
    *,
    progress: Progress,
) -> str:
    """Install this zapvisor on the host and switch it to it; the wrapper's path."""
    name = endpoint.name
    python = check_can_install(name, probe)
    version = wheel.installed_version()
    root = probe.root
    venv_name = f"venv-{version}-{secrets.token_hex(3)}"
    venv = posixpath.join(root, venv_name)
    with tempfile.TemporaryDirectory(prefix="zapvisor-wheel-") as tmp:
        built = await asyncio.to_thread(wheel.build_wheel, Path(tmp))
        remote_wheel = posixpath.join(root, built.name)
        progress(f"copying {built.name} to {name}")
        made_root = False
        try:
            async with pool.sftp(endpoint, timeout=30) as sftp:
                if not await sftp.exists(root):
                    made_root = True
                await sftp.makedirs(root, exist_ok=True)
                await sftp.chmod(root, 0o700)
                await sftp.put(str(built), remote_wheel)
        except (asyncssh.SFTPError, OSError) as exc:
            await _clean(pool, endpoint, [remote_wheel], root if made_root else None)
            raise _install_error(name, str(exc), probe) from None
    progress(f"installing zapvisor {version} on {name} (pip fetches its dependencies there)")
    q = shlex.quote
    script = (
        f"{q(python)} -m venv {q(venv)} && "
        f"{q(venv + '/bin/python')} -m pip install --disable-pip-version-check -q "
        f"{q(remote_wheel)}"
    )
    done = await pool.run(endpoint, script_in_sh(script), timeout=INSTALL_TIMEOUT)
    if done.exit_status != 0:
        await _clean(pool, endpoint, [venv, remote_wheel], root if made_root else None)
        raise _install_error(name, done.stderr or done.stdout, probe)
    try:
        await write_settings(pool, endpoint, probe, env_text)
    except (asyncssh.SFTPError, OSError) as exc:
        await _clean(pool, endpoint, [venv, remote_wheel], None)
        raise _install_error(name, str(exc), probe) from None
    # switch; keep the venv the host ran until now, and any older one a process of this
    # user still runs from (a session not restarted since an earlier upgrade)
    switch = (
        f"cd {q(root)} && old=$(readlink venv 2>/dev/null || true) && "
        f"ln -sfn {q(venv_name)} venv.new && mv -Tf venv.new venv && rm -f {q(built.name)} && "
        'running=$(ps -u "$(id -u)" -o args= 2>/dev/null) && '
        f'for d in venv-*; do [ "$d" = {q(venv_name)} ] || [ "$d" = "$old" ] || '
        f'printf "%s" "$running" | grep -qF {q(root)}/"$d"/ || rm -rf "$d"; done'
    )
    done = await pool.run(endpoint, script_in_sh(switch), timeout=120)
    if done.exit_status != 0:
        raise RemoteZapvisorError(
            f"zapvisor {version} is installed on {name} in {venv} but switching to it failed: "
            f"{done.stderr.strip() or done.exit_status}"
        )
    return probe.zapvisor


def script_in_sh(script: str) -> str:
    return f"sh -c {shlex.quote(script)}"


async def _clean(pool: SSHPool, endpoint: Endpoint, paths: list[str], root: str | None) -> None:
    """Undo a failed install (best effort: the host may be the reason it failed)."""
    words = " ".join(shlex.quote(p) for p in paths)
    script = f"rm -rf {words}" + (f" && rmdir {shlex.quote(root)} 2>/dev/null" if root else "")
    with contextlib.suppress(HostError):
        await pool.run(endpoint, script_in_sh(script + "; true"), timeout=120)


def _install_error(name: str, output: str, probe: Probe) -> RemoteZapvisorError:
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    if any("No space left on device" in ln for ln in lines):
        error = RemoteZapvisorError(
            f"{name} ran out of disk space in {probe.free_dir or probe.root} while zapvisor "
            "was being installed: free some space and run the command again (nothing was "
            "changed there)"
        )
        error.exit_code = 73
        return error
    last = next((ln for ln in reversed(lines) if "error" in ln.lower()), lines[-1] if lines else "")
    return RemoteZapvisorError(
        f"installing zapvisor on {name} failed: {last or 'no reason given'} (nothing was "
        "changed there)"
    )
