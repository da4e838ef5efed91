"""Where everything lives inside the state directory (ZAPVISOR_HOME)."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from ecosystem.errors import StateDirError
from ecosystem.names import program_name, validate_name

# A unix socket path must fit in sun_path (108 bytes on Linux, with its NUL).
_SOCKET_MAX = 100


@dataclass(frozen=True)
class StatePaths:
    home: Path

    @property
    def conf(self) -> Path:
        return self.home / "supervisord.conf"

    @property
    def credentials(self) -> Path:
        return self.home / "secrets" / "supervisord.json"

    @property
    def secrets(self) -> Path:
        return self.home / "secrets"

    @property
    def runtime_env(self) -> Path:
        """The settings runners start with (0600: may hold a database password)."""
        return self.home / "runtime.env"

    @property
    def pidfile(self) -> Path:
        return self.home / "supervisord.pid"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def supervisord_log(self) -> Path:
        return self.logs / "supervisord.log"

    @property
    def tokens(self) -> Path:
        return self.home / "tokens"

    @property
    def apply_lock(self) -> Path:
        return self.home / "apply.lock"

    @property
    def socket(self) -> Path:
        """supervisord's socket; outside the home only when the home path is too long
        for a unix socket (then in a 0700 folder of the temp dir named after it)."""
        inside = self.home / "supervisor.sock"
        if len(os.fsencode(inside)) <= _SOCKET_MAX:
            return inside
        import hashlib
        import tempfile

        digest = hashlib.sha256(os.fsencode(self.home)).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"zapvisor-{digest}" / "supervisor.sock"

    def health_socket(self, name: str) -> Path:
        """`run/<name>.sock`: the runner's /health for the health monitor alone (see
        runner/lane.py); beside supervisord's socket when the home path is too long."""
        path = self.home / "run" / f"{validate_name(name)}.sock"
        if len(os.fsencode(path)) <= _SOCKET_MAX:
            return path
        return self.socket.parent / "run" / f"{name}.sock"

    def token_dir(self, name: str) -> Path:
        """`tokens/<name>/`: a session's WhatsApp auth; the name is validated first so
        no input can point outside the state directory."""
        return self.tokens / validate_name(name)

    def api_token_file(self, name: str) -> Path:
        return self.secrets / f"{validate_name(name)}.token"

    def stdout_log(self, name: str) -> Path:
        return self.logs / f"{program_name(validate_name(name))}.log"

    def stderr_log(self, name: str) -> Path:
        return self.logs / f"{program_name(validate_name(name))}.err.log"

    def log_files(self, name: str) -> list[Path]:
        """A session's log files, rotated ones included (`wa-NAME.log.1`, …)."""
        out, err = self.stdout_log(name), self.stderr_log(name)
        return sorted({*self.logs.glob(out.name + "*"), *self.logs.glob(err.name + "*")})

    def ensure(self) -> None:
        """Create the state directory tree with private permissions, or say why not."""
        try:
            for folder in (self.home, self.logs, self.tokens, self.secrets):
                folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.home.chmod(0o700)
            self.secrets.chmod(0o700)
            sock_dir = self.socket.parent
            if sock_dir != self.home:
                sock_dir.mkdir(mode=0o700, exist_ok=True)
                sock_dir.chmod(0o700)
            # per thread: the terminal app calls this from several threads at once
            probe = self.home / f".write-test-{os.getpid()}-{threading.get_ident()}"
            probe.write_text("")
            probe.unlink()
            _private_files(self.logs)
        except OSError as exc:
            raise StateDirError(
                f"state directory {self.home} is not usable ({exc.strerror or exc}): "
                "set ZAPVISOR_HOME to a folder you can write"
            ) from None


def _private_files(folder: Path) -> None:
    """Logs hold message contents and phone numbers: 0600, also those a supervisord
    created before its config said umask=077 (it keeps its umask until it restarts)."""
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_file(follow_symlinks=False) and entry.stat().st_mode & 0o077:
                os.chmod(entry.path, 0o600)


def write_private(path: Path, text: str, *, replace: bool = True) -> None:
    """Write ``text`` atomically (temp file + rename) with mode 0600. With
    ``replace=False`` an existing file wins: FileExistsError, nothing written.
    Any other failure (a full or read-only disk) is a StateDirError naming the file;
    the old file, if any, is left as it was."""
    try:
        _write_private(path, text, replace)
    except FileExistsError:
        raise
    except OSError as exc:
        raise StateDirError(f"cannot write {path}: {exc.strerror or exc}") from None


def _write_private(path: Path, text: str, replace: bool) -> None:
    import tempfile  # only a write needs it; a read-only command does none

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # atomic, and fails when the file exists
            Path(tmp).unlink()
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
