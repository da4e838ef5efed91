"""The door's backups: this host's sessions, with everything needed to bring them back
connected on a fresh machine (`zapvisor backup`, `zapvisor restore`).

What a session needs besides its row lives in the state dir (README, "Moving off
SQLite"): its WhatsApp auth in `tokens/NAME/`, its API token, its webhook signing
secret and its bot's own provider key in `secrets/`; or, for a session whose auth lives
in the store, in the store's auth rows. The archive carries them with the rows (where
the auth lives and the failover switch included; for a neonize session, whatsmeow's own
rows of its device: ecosystem/whatsmeow_dump.py) and the webhook events not delivered
yet (pending and dead letters), so the receiver misses nothing. The bot's conversations
stay out: they are its short memory of each contact, not something a restored session
needs to answer.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from ecosystem import __version__
from ecosystem.errors import CapacityError, SessionExists, ZapvisorError
from ecosystem.fleet.door import FleetDoor
from ecosystem.names import PROVIDERS, validate_name
from ecosystem.ports import busy_ports
from ecosystem.session import Session, utcnow
from ecosystem.states import Status
from ecosystem.store.base import checked_config

if TYPE_CHECKING:
    from ecosystem.backup_archive import Contents
    from ecosystem.whatsmeow_dump import Dump

# The archive's modules (and psycopg, for whatsmeow's rows) are imported by the methods
# that use them: every command opens this door, and only backup and restore need them.

_SQLITE_SIDECARS = ("-wal", "-shm", "-journal")


@dataclass
class BackupReport:
    path: str
    sessions: list[str]
    files: int
    webhooks: int
    bytes: int
    encrypted: bool
    seconds: float
    store_auth: int = 0
    """Sessions whose auth came from the store's rows (not files)."""
    whatsmeow_devices: int = 0
    """Of those, neonize devices whose whatsmeow rows it carries."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RestoreReport:
    path: str
    sessions: list[str]
    ports: dict[str, int]
    """Each session's port here (a port taken or out of range here is replaced)."""
    replaced: list[str] = field(default_factory=list)
    webhooks: int = 0
    started: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    backup_host: str = ""
    backup_created_at: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Backups(FleetDoor):
    # -- backup --------------------------------------------------------------------------

    def backup(self, dest: Path, *, passphrase: str | None = None) -> BackupReport:
        """Write this host's sessions to ``dest`` (0600; an existing file is refused)."""
        from ecosystem import backup_archive, backup_store
        from ecosystem.whatsmeow_dump import Dump

        started = time.monotonic()
        if passphrase is not None:
            backup_archive.check_passphrase(passphrase)
        if dest.exists():
            raise ZapvisorError(f"{dest} already exists: choose another file (-o FILE)")
        sessions = self.store.list_sessions(self.host_id)
        rows = [self._row(s) for s in sessions]
        auth = backup_store.store_auth_rows(self.store, sessions)
        whatsmeow = Dump(self._dsn(), sessions, self.progress)
        manifest = {
            "zapvisor": __version__,
            "created_at": utcnow().isoformat(),
            "host": self.host_id,
            "store": self.store.kind,
            "sessions": [s.name for s in sessions],
        }
        try:
            with _new_file(dest) as fh:
                files, events = self._write_archive(
                    fh, manifest, rows, auth, whatsmeow, sessions, passphrase
                )
        except FileExistsError:
            raise ZapvisorError(f"{dest} already exists: choose another file (-o FILE)") from None
        except OSError as exc:
            raise ZapvisorError(f"cannot write {dest}: {exc.strerror or exc}") from None
        self.store.add_event(None, "backup", actor=self.actor, detail={"sessions": len(rows)})
        return BackupReport(
            str(dest),
            [s.name for s in sessions],
            files,
            events,
            dest.stat().st_size,
            passphrase is not None,
            round(time.monotonic() - started, 3),
            len(auth) + len(whatsmeow.devices),
            len(whatsmeow.devices),
        )

    def _write_archive(
        self,
        fh: BinaryIO,
        manifest: dict[str, Any],
        rows: list[dict[str, Any]],
        auth: list[dict[str, Any]],
        whatsmeow: Dump,
        sessions: list[Session],
        passphrase: str | None,
    ) -> tuple[int, int]:
        """The archive into ``fh``, one file (and one webhook event) at a time; how many
        files and events it holds."""
        import tempfile

        from ecosystem import backup_archive, backup_store

        writer = backup_archive.Writer(fh, passphrase)
        writer.add_json(backup_archive.SESSIONS, rows)
        writer.add_json(backup_archive.STORE_AUTH, auth)
        writer.add_lines(backup_archive.WHATSMEOW, whatsmeow.lines())
        undelivered = backup_store.undelivered(self.store, sessions)
        events = writer.add_lines(backup_archive.WEBHOOK_LINES, undelivered)
        files = 0
        with tempfile.TemporaryDirectory(prefix="zv-backup-") as tmp:
            for s in sessions:
                for rel, path in self._session_files(s.name):
                    if _is_sqlite(path):
                        writer.add_file(rel, _sqlite_copy(path, Path(tmp) / "copy.db"))
                    else:
                        writer.add_file(rel, path)
                    files += 1
        writer.finish(manifest)
        return files, events

    def _dsn(self) -> str | None:
        """The fleet's database, where whatsmeow keeps store auth (a secret)."""
        url = self.settings.database_url
        return url.get_secret_value() if url is not None else None

    @staticmethod
    def _row(session: Session) -> dict[str, Any]:
        row = session.model_dump(mode="json")
        row["api_token_hash"] = session.api_token_hash
        return row

    def _session_files(self, name: str) -> Iterator[tuple[str, Path]]:
        """`tokens/NAME/…`, the API token, the webhook secret and the bot's own provider
        keys: each file's state-dir relative path and where it is."""
        from ecosystem import aikeys, webhook_events

        home = self.paths.home
        auth = self.paths.token_dir(name)
        if auth.is_dir():
            for path in sorted(auth.rglob("*")):
                if not path.is_file() or path.is_symlink():
                    continue
                if path.name.endswith(_SQLITE_SIDECARS):
                    continue  # folded into the database's own copy
                yield path.relative_to(home).as_posix(), path
        secrets = [self.paths.api_token_file(name), webhook_events.secret_file(self.paths, name)]
        secrets += [aikeys.key_file(self.paths, name, p) for p in PROVIDERS]
        for path in secrets:
            if path.is_file():
                yield path.relative_to(home).as_posix(), path

    # -- restore -------------------------------------------------------------------------

    def restore(
        self, source: Path, *, passphrase: str | None = None, force: bool = False
    ) -> RestoreReport:
        """Bring back the sessions of a backup on this host, each with its auth (files,
        or the store's rows: either way it connects without a new QR), token, webhook
        secret and undelivered events, and
        start those meant to run. Everything is checked before anything changes; a
        session of the same name here is refused unless ``force`` (then replaced)."""
        import tempfile

        from ecosystem import backup_archive
        from ecosystem.backup_archive import ArchiveError

        try:
            fh = source.open("rb")
        except OSError as exc:
            raise ArchiveError(f"cannot read {source}: {exc.strerror or exc}") from None
        self.paths.ensure()
        # unpacked next to where the files go (one rename each), removed whatever happens
        staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=self.paths.home))
        try:
            with fh:
                contents = backup_archive.read(fh, passphrase, staging)
            return self._restore(source, contents, staging, force)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _restore(
        self, source: Path, contents: Contents, staging: Path, force: bool
    ) -> RestoreReport:
        from ecosystem import backup_store, whatsmeow_restore

        sessions = _sessions(contents)
        names = [s.name for s in sessions]
        _check_files(contents, names)
        devices = backup_store.checked_store_auth(contents, sessions)
        whatsmeow = whatsmeow_restore.checked(contents, sessions)
        events = backup_store.count_events(contents, set(names))
        here = {s.name: s for s in self.store.list_sessions()}
        clash = sorted(n for n in names if n in here)
        if clash and not force:
            raise SessionExists(
                f"sessions already here: {', '.join(clash)}; nothing restored "
                "(--force replaces them, their auth included)"
            )
        ports = self._restore_ports(sessions, set(clash))
        target = whatsmeow_restore.Target.prepare(
            whatsmeow, self._dsn(), replace=force, contents=contents
        )
        for name in clash:  # only now: everything else was checked
            self.progress(f"replacing {name}")
            self.delete(name, purge=True)
        rows = [
            s.model_copy(
                update={
                    "host": self.host_id,
                    "port": ports[s.name],
                    "status": Status.INITIALIZING,
                    "qr_payload": None,
                    "qr_expires_at": None,
                }
            )
            for s in sessions
        ]
        self.store.import_rows(rows, [], actor=self.actor)
        try:
            backup_store.import_events(self.store, contents, set(names), actor=self.actor)
            backup_store.restore_store_auth(self.store, devices)
            if target is not None:
                target.write(contents)
            self._move_files(contents, staging, names)
        except BaseException:
            if target is not None:
                with contextlib.suppress(ZapvisorError):
                    target.forget()
            for name in names:
                with contextlib.suppress(ZapvisorError):
                    self.store.delete_session(name, actor=self.actor)
            raise
        origin = {"from_host": contents.manifest.get("host"), "file": source.name}
        for name in names:
            self.store.add_event(name, "restore", actor=self.actor, detail=origin)
        self.progress(f"restored {len(names)} session(s); starting those meant to run")
        result = self.apply()
        return RestoreReport(
            path=str(source),
            sessions=names,
            ports=ports,
            replaced=clash,
            webhooks=events,
            started=[n for n in result.started if n in ports],
            failed={n: why for n, why in self._start_failures().items() if n in ports},
            backup_host=str(contents.manifest.get("host", "")),
            backup_created_at=str(contents.manifest.get("created_at", "")),
        )

    def _restore_ports(self, sessions: list[Session], replaced: set[str]) -> dict[str, int]:
        """Each session's old port when it is in this host's range and free here, else
        the lowest free one; CapacityError (nothing changed) when they do not fit."""
        staying = [s for s in self.store.list_sessions(self.host_id) if s.name not in replaced]
        if len(staying) + len(sessions) > self.settings.max_sessions:
            raise CapacityError(
                f"{len(sessions)} session(s) to restore and {len(staying)} here exceed "
                f"MAX_SESSIONS={self.settings.max_sessions}: raise it, nothing was restored"
            )
        taken = {s.port for s in staying} | busy_ports(self.ports, self.settings.bind)
        out: dict[str, int] = {}
        for s in sessions:
            if s.port in self.ports and s.port not in taken:
                out[s.name] = s.port
                taken.add(s.port)
        for s in sessions:
            if s.name in out:
                continue
            free = [p for p in self.ports if p not in taken]
            if not free:
                raise CapacityError(
                    f"no free port for {s.name} in {self.ports.start}-{self.ports.stop - 1}: "
                    "nothing was restored"
                )
            out[s.name] = free[0]
            taken.add(free[0])
        return out

    def _move_files(self, contents: Contents, staging: Path, names: list[str]) -> None:
        """Auth folders replaced whole (a folder left by a delete without --purge
        included), tokens and secrets moved in as unpacked (0600, folders 0700)."""
        home = self.paths.home
        for name in names:
            shutil.rmtree(self.paths.token_dir(name), ignore_errors=True)
        for rel in contents.files:
            path = home / rel
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.replace(staging / rel, path)


def _sessions(contents: Contents) -> list[Session]:
    from ecosystem.backup_archive import ArchiveError

    out: list[Session] = []
    seen: set[str] = set()
    for i, row in enumerate(contents.sessions):
        try:
            session = Session.model_validate(row)
            validate_name(session.name)
            # the rules every write path applies: a runner never meets a config it
            # cannot read, whichever way the row came in
            bot = {"ai_config": session.ai_config, "timing_config": session.timing_config}
            session = session.model_copy(update=dict(checked_config(bot)))
        except (ValueError, ZapvisorError) as exc:
            raise ArchiveError(f"session {i + 1} of the backup is not valid: {exc}") from None
        if session.name in seen:
            raise ArchiveError(f"session {session.name} appears twice in the backup")
        seen.add(session.name)
        out.append(session)
    return out


def _check_files(contents: Contents, names: list[str]) -> None:
    """Every file belongs to one of the archive's sessions, at a place it may be."""
    from ecosystem.backup_archive import ArchiveError

    kinds = ["token", "webhook-secret", *(f"{p}-key" for p in PROVIDERS)]
    allowed = {f"secrets/{n}.{kind}" for n in names for kind in kinds}
    for rel in contents.files:
        parts = rel.split("/")
        if rel in allowed:
            continue
        if len(parts) >= 3 and parts[0] == "tokens" and parts[1] in names:
            continue
        raise ArchiveError(f"file {rel!r} in the backup belongs to no session in it: refused")


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def _sqlite_copy(path: Path, copy: Path) -> Path:
    """A consistent copy of a live SQLite database (its WAL folded in), at ``copy``."""
    copy.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    dst = sqlite3.connect(copy)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    return copy


@contextlib.contextmanager
def _new_file(dest: Path) -> Iterator[BinaryIO]:
    """A new file, 0600 from the first byte, synced when done and removed when what
    writes it fails; FileExistsError when it exists."""
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
