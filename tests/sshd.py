"""Real OpenSSH servers and remote hosts for the fleet tests (no pytest in here: the
fixtures are tests/fleet_fixtures.py).

- :class:`SshServer`: `sshd -D -e -f CFG -p PORT` on 127.0.0.1 with its own host key and
  config, key authentication only, letting in only the users these tests make.
- :func:`create_user` / :func:`delete_user`: a remote host is a Linux user of its own
  (`zvh<pid>x<n>`: unique per test process, so xdist workers and runs never clash),
  unlocked for key logins (`usermod -p '*'`), removed with its home afterwards.
- :func:`fleet_venv`: a venv other users can run (from /usr/bin/python3: the `python3`
  on PATH may be a pyenv shim under /root, unreadable to them) with this tree installed
  in editable mode, built once and cached by a hash of pyproject.toml and the tree.
- :func:`install_host`: the layout a bootstrap leaves (tests/../ecosystem/fleet/layout.py)
  around that shared venv, with the host's own ZAPVISOR_HOME, ports and host id.

Everything runs as root (the tests do); every process is ended by pid.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from ecosystem.fleet import layout

ROOT = Path(__file__).resolve().parents[1]
SSHD = Path("/usr/sbin/sshd")
SYSTEM_PYTHON = Path("/usr/bin/python3")
USER_PREFIX = "zvh"
_USER_RE = re.compile(rf"{USER_PREFIX}(\d+)x\d+")


def sshd_missing() -> str | None:
    """Why the real-sshd tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "the fleet tests make Linux users and need root"
    if not SSHD.exists():
        return "OpenSSH's sshd is not installed (./scripts/test installs openssh-server)"
    if not SYSTEM_PYTHON.exists():
        return "/usr/bin/python3 is missing (apt-get install python3 python3-venv)"
    return None


def _tree(pid: int) -> list[psutil.Process]:
    try:
        parent = psutil.Process(pid)
        return [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


class SshServer:
    """One sshd on 127.0.0.1:port, configured and keyed in its own temp dir."""

    def __init__(self, port: int) -> None:
        import asyncssh

        self.port = port
        self.root = Path(tempfile.mkdtemp(prefix="zv-sshd-", dir="/tmp"))
        self.root.chmod(0o755)
        self.host_key = self.root / "ssh_host_ed25519_key"
        self.config = self.root / "sshd_config"
        self.log = self.root / "sshd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.new_host_key()
        del asyncssh

    def new_host_key(self) -> str:
        """Give the server a new host key (a reinstalled machine); its fingerprint."""
        import asyncssh

        key = asyncssh.generate_private_key("ssh-ed25519")
        self.host_key.unlink(missing_ok=True)
        key.write_private_key(self.host_key)
        self.host_key.chmod(0o600)
        key.write_public_key(self.host_key.with_suffix(".pub"))
        self.fingerprint = str(key.get_fingerprint("sha256"))
        return self.fingerprint

    def _write_config(self) -> None:
        self.config.write_text(
            "\n".join(
                [
                    "ListenAddress 127.0.0.1",
                    f"HostKey {self.host_key}",
                    "PidFile none",
                    "UsePAM no",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PubkeyAuthentication yes",
                    "PermitRootLogin no",
                    f"AllowUsers {USER_PREFIX}*",
                    "AuthorizedKeysFile .ssh/authorized_keys",
                    "Subsystem sftp internal-sftp",
                    "MaxStartups 100:30:200",
                    "LogLevel VERBOSE",
                    "",
                ]
            )
        )

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def start(self, timeout: float = 20.0) -> SshServer:
        # sshd refuses to start without its privilege separation directory
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self._write_config()
        log = open(self.log, "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(self.config), "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited at start: {self.log_tail()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1) as s,
            ):
                s.settimeout(2)
                if s.recv(64).startswith(b"SSH-2.0-"):
                    return self
            if time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not answer on {self.port}: {self.log_tail()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """End the listener and every connection it serves (a host whose sshd died)."""
        if self.proc is None:
            return
        procs = _tree(self.proc.pid)
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        psutil.wait_procs(procs, timeout=10)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        self.proc = None

    def freeze(self) -> list[int]:
        """Stop the listener and its connections' processes (a host that went silent:
        TCP stays up, nothing answers). Returns the pids, for :meth:`thaw`."""
        assert self.proc is not None
        pids = [p.pid for p in _tree(self.proc.pid) if p.name() == "sshd"]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        return pids

    def thaw(self, pids: list[int]) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.splitlines()[-lines:])


@dataclass(frozen=True)
class HostUser:
    name: str
    uid: int
    gid: int
    home: Path


_made = [0]


def create_user() -> HostUser:
    """A fresh Linux user with a home, able to log in with a key."""
    _made[0] += 1
    name = f"{USER_PREFIX}{os.getpid()}x{_made[0]}"
    home = Path("/home") / name
    subprocess.run(
        ["useradd", "-m", "-d", str(home), "-s", "/bin/sh", name],
        check=True,
        capture_output=True,
        timeout=60,
    )
    # useradd leaves the account locked ('!'), which sshd without PAM refuses even for
    # keys; '*' means no password can ever match, yet keys work.
    subprocess.run(["usermod", "-p", "*", name], check=True, capture_output=True, timeout=60)
    entry = pwd.getpwnam(name)
    return HostUser(name, entry.pw_uid, entry.pw_gid, home)


def kill_user_processes(uid: int) -> None:
    """End the processes a test left running as that user (its supervisord, runners,
    sshd sessions), by pid."""
    procs = [
        p for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == uid
    ]
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(procs, timeout=10)


def delete_user(user: HostUser) -> None:
    kill_user_processes(user.uid)
    # the home first, ourselves: `userdel -r` walks it far slower (a venv is ~20k files)
    shutil.rmtree(user.home, ignore_errors=True)
    subprocess.run(["userdel", "-f", user.name], capture_output=True, timeout=120, check=False)


def sweep_stale_users() -> None:
    """Remove the users of earlier test processes that died before their clean-up."""
    for entry in pwd.getpwall():
        match = _USER_RE.fullmatch(entry.pw_name)
        if match and not psutil.pid_exists(int(match[1])):
            delete_user(HostUser(entry.pw_name, entry.pw_uid, entry.pw_gid, Path(entry.pw_dir)))


def authorize(user: HostUser, public_key: str) -> None:
    ssh = user.home / ".ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    keys = ssh / "authorized_keys"
    keys.write_text(public_key.strip() + "\n")
    keys.chmod(0o600)
    for path in (ssh, keys):
        os.chown(path, user.uid, user.gid)


def as_user(
    user: HostUser, argv: list[str], *, timeout: float = 120, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command as the host's user, with a login-like environment."""
    env = {
        "HOME": str(user.home),
        "USER": user.name,
        "LOGNAME": user.name,
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
    }
    return subprocess.run(
        argv,
        user=user.uid,
        group=user.gid,
        extra_groups=[],
        env=env,
        cwd=cwd or user.home,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def fleet_venv() -> Path:
    """The shared venv remote hosts run (see the module docstring); made once, under a
    lock so parallel workers build it only once."""
    digest = hashlib.sha256()
    digest.update((ROOT / "pyproject.toml").read_bytes())
    digest.update(str(ROOT).encode())
    digest.update(os.path.realpath(SYSTEM_PYTHON).encode())
    venv = Path(f"/tmp/zv-fleet-venv-{digest.hexdigest()[:12]}")
    ready = venv / ".zapvisor-ready"
    with open(f"{venv}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready.exists():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", str(venv)], check=True, timeout=300)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "-e", str(ROOT)], check=True, timeout=900, capture_output=True)
        subprocess.run(["chmod", "-R", "a+rX", str(venv)], check=True, timeout=120)
        ready.write_text("ok\n")
        ready.chmod(0o644)
    return venv


@dataclass
class HostSetup:
    """A remote host's zapvisor settings (its .env)."""

    name: str
    base_port: int
    max_sessions: int
    home: Path
    """Its ZAPVISOR_HOME."""


def install_host(user: HostUser, venv: Path, setup: HostSetup, store: dict[str, str]) -> Path:
    """Lay out ~/.zapvisor as a bootstrap does, around the shared venv; the wrapper's
    path (what `hosts add` finds there)."""
    root = Path(layout.remote_root(str(user.home)))
    root.mkdir(mode=0o700)
    (root / "venv").symlink_to(venv)
    wrapper = Path(layout.wrapper_path(str(root)))
    wrapper.write_text(layout.WRAPPER)
    wrapper.chmod(0o700)
    env = root / ".env"
    env.write_text(
        layout.host_env(
            setup.name, setup.base_port, setup.max_sessions, store, home=str(setup.home)
        )
    )
    env.chmod(0o600)
    for path in (root, root / "venv", wrapper, env):
        os.chown(path, user.uid, user.gid, follow_symlinks=False)
    return wrapper
