"""The backup archive: one file holding sessions' rows, their WhatsApp auth (files, and
the store's rows for auth kept there), API tokens, webhook secrets and undelivered
webhook events (`zapvisor backup` / `restore`).

A gzip'd tar whose last member, ``manifest.json``, lists every other member with its
SHA-256 (last, so the archive is written as a stream: a member's digest is known once
it is written). Both ways stream, so memory stays the same whatever the number of
sessions and the size of their auth: writing copies one file at a time into the
archive, reading unpacks each member into a staging folder while checking it. Nothing
unpacked is used before everything was checked: gzip's own CRC and length (a
truncated file fails there), the tar structure, each member's digest against the
manifest, and that no member is anything but a plain file under a known folder (no
links, no ``..``).

Format 2 (this zapvisor writes it) adds ``store_auth.json``, the auth rows of sessions
whose auth lives in the store, and carries the webhook events as JSON lines
(``webhooks.jsonl``), written and read one event at a time. Format 3 adds
``whatsmeow.jsonl``: whatsmeow's own rows of each neonize device whose auth lives in the
store (ecosystem/whatsmeow_dump.py), one row a line. Formats 1 (``webhooks.json``, no
store auth) and 2 are still read.

With a passphrase the tar.gz is sealed in chunks (``backup_seal``): a wrong passphrase,
a changed byte and a cut file are all refused; nothing of the contents, not even the
session names, can be read without it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

from ecosystem import backup_seal
from ecosystem.backup_seal import MAGIC as ENCRYPTED_MAGIC
from ecosystem.backup_seal import ArchiveError, check_passphrase
from ecosystem.errors import ZapvisorError

__all__ = ["ENCRYPTED_MAGIC", "ArchiveError", "Contents", "Writer", "check_passphrase", "read"]

FORMAT = 3
READS = (1, 2, 3)
"""The formats this zapvisor reads."""
MANIFEST = "manifest.json"
SESSIONS = "sessions.json"
WEBHOOKS = "webhooks.json"
"""Format 1's undelivered webhook events, one JSON list."""
WEBHOOK_LINES = "webhooks.jsonl"
"""Format 2's: one event a line, streamed both ways (unpacked, never held in memory)."""
STORE_AUTH = "store_auth.json"
"""Format 2: the auth rows of sessions whose auth lives in the store."""
WHATSMEOW = "whatsmeow.jsonl"
"""Format 3: whatsmeow's rows of neonize devices whose auth lives in the store, one a
line (unpacked, never held in memory)."""
_LINES = (WEBHOOK_LINES, WHATSMEOW)
"""The members of JSON lines, unpacked next to files/'s tokens/ and secrets/."""
_SMALL = {
    1: {SESSIONS, WEBHOOKS},
    2: {SESSIONS, STORE_AUTH, WEBHOOK_LINES},
    3: {SESSIONS, STORE_AUTH, WEBHOOK_LINES, WHATSMEOW},
}
"""Each format's members besides the manifest and files/."""
_SPOOL = 4 * 2**20
FILES = "files/"
"""Members under it are files of the state dir, by their path inside it."""
_JSON_MAX = 256 * 2**20
"""The most a JSON member may hold: they are read into memory, files are not."""
_COPY = 64 * 1024


@dataclass
class Contents:
    """What an archive holds, every digest checked."""

    manifest: dict[str, Any]
    sessions: list[dict[str, Any]]
    webhooks: list[dict[str, Any]]
    """Format 1's events; format 2's are in ``webhook_lines``."""
    files: list[str] = field(default_factory=list)
    """State-dir relative paths (``tokens/NAME/…``, ``secrets/NAME.token``…), each
    unpacked at that path under the staging folder given to ``read``."""
    store_auth: list[dict[str, Any]] = field(default_factory=list)
    webhook_lines: Path | None = None
    """Format 2's events, unpacked (one JSON object a line)."""
    whatsmeow_lines: Path | None = None
    """Format 3's whatsmeow rows, unpacked (one JSON object a line)."""

    @property
    def format(self) -> int:
        return int(self.manifest["format"])

    def webhook_rows(self) -> Iterator[dict[str, Any]]:
        """The undelivered events one at a time, whichever the format."""
        yield from self.webhooks
        yield from _objects(self.webhook_lines, WEBHOOK_LINES)

    def whatsmeow_rows(self) -> Iterator[dict[str, Any]]:
        """whatsmeow's rows one at a time (none before format 3)."""
        yield from _objects(self.whatsmeow_lines, WHATSMEOW)


def _objects(path: Path | None, member: str) -> Iterator[dict[str, Any]]:
    """The JSON objects of an unpacked lines ``member``, one a line."""
    if path is None:
        return
    with path.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            try:
                value = json.loads(line)
            except ValueError as exc:
                raise ArchiveError(f"line {n} of its {member} is not JSON ({exc})") from None
            if not isinstance(value, dict):
                raise ArchiveError(f"line {n} of its {member} is not an object")
            yield value


class _Hashing:
    """A file read through, its SHA-256 taken on the way."""

    def __init__(self, src: BinaryIO) -> None:
        self.src = src
        self.sha = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.src.read(size)
        self.sha.update(data)
        return data


class Writer:
    """Writes an archive to ``out`` (sealed when a passphrase is given), one member at a
    time; ``finish`` adds the manifest and ends the streams."""

    def __init__(self, out: BinaryIO, passphrase: str | None = None) -> None:
        self._sealer = backup_seal.SealWriter(out, passphrase) if passphrase is not None else None
        sink: Any = self._sealer or out
        self._gz = gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=6, mtime=0)
        # closed by finish(): the writer lives across many calls
        self._tar = tarfile.open(fileobj=self._gz, mode="w|", format=tarfile.PAX_FORMAT)  # noqa: SIM115
        self._digests: dict[str, str] = {}
        self._now = int(time.time())

    def add(self, name: str, src: BinaryIO, size: int) -> None:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = 0o600
        info.mtime = self._now
        hashing = _Hashing(src)
        self._tar.addfile(info, hashing)
        self._digests[name] = hashing.sha.hexdigest()

    def add_bytes(self, name: str, data: bytes) -> None:
        self.add(name, io.BytesIO(data), len(data))

    def add_json(self, name: str, value: Any) -> None:
        self.add_bytes(name, _json(value))

    def add_lines(self, name: str, rows: Iterable[Any]) -> int:
        """One JSON value a line, spooled (to disk past a few MB, as a tar member's size
        comes first) so the rows never sit in memory together; how many."""
        count = 0
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL, prefix="zv-lines-") as spool:
            for row in rows:
                spool.write(json.dumps(row, ensure_ascii=False, default=str).encode("utf-8"))
                spool.write(b"\n")
                count += 1
            size = spool.tell()
            spool.seek(0)
            self.add(name, spool, size)  # type: ignore[arg-type]
        return count

    def add_file(self, rel: str, path: Path) -> None:
        """A state-dir file, streamed (its size when opened; a file that shrinks
        meanwhile fails the backup rather than leaving a short member)."""
        with path.open("rb") as fh:
            self.add(FILES + rel, fh, os.fstat(fh.fileno()).st_size)

    def finish(self, manifest: dict[str, Any]) -> None:
        head = {**manifest, "format": FORMAT, "members": dict(self._digests)}
        data = _json(head)
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mode, info.mtime = len(data), 0o600, self._now
        self._tar.addfile(info, io.BytesIO(data))
        self._tar.close()
        self._gz.close()
        if self._sealer is not None:
            self._sealer.finish()


def read(src: BinaryIO, passphrase: str | None, staging: Path) -> Contents:
    """Check an archive, unpacking its files under ``staging`` (0600 files, 0700
    folders); ArchiveError says what is wrong with it."""
    head = src.read(backup_seal.MAGIC_LEN)
    stream: Any
    if backup_seal.is_sealed(head):
        if passphrase is None:
            raise ArchiveError(
                "this backup is encrypted: give its passphrase (ZAPVISOR_BACKUP_PASSPHRASE, "
                "--passphrase-stdin, or type it at the prompt)"
            )
        if head == backup_seal.MAGIC_WHOLE:
            stream = io.BytesIO(backup_seal.open_whole(head + src.read(), passphrase))
        else:
            src.seek(0)
            stream = backup_seal.OpenReader(src, passphrase)
    else:
        src.seek(0)
        stream = src
    try:
        return _read_tar(stream, staging)
    except (OSError, EOFError, zlib.error) as exc:
        raise ArchiveError(
            f"not a complete zapvisor backup (corrupt or truncated: {exc})"
        ) from None
    except tarfile.TarError as exc:
        raise ArchiveError(f"not a zapvisor backup, or a corrupt one (bad tar: {exc})") from None


def _read_tar(stream: BinaryIO, staging: Path) -> Contents:
    gz = gzip.GzipFile(fileobj=stream, mode="rb")
    digests: dict[str, str] = {}
    small: dict[str, bytes] = {}
    with tarfile.open(fileobj=gz, mode="r|") as tar:
        for info in tar:
            _check_member(info, digests)
            fh = tar.extractfile(info)
            if fh is None:  # pragma: no cover - a regular file always has a body
                raise ArchiveError(f"member {info.name!r} has no contents")
            if info.name.startswith(FILES):
                digests[info.name] = _unpack(fh, staging / info.name[len(FILES) :])
                continue
            if info.name in _LINES:
                digests[info.name] = _unpack(fh, staging / info.name)
                continue
            if info.size > _JSON_MAX:
                raise ArchiveError(f"member {info.name!r} is too large for a backup's JSON")
            small[info.name] = fh.read()
            digests[info.name] = hashlib.sha256(small[info.name]).hexdigest()
    while gz.read(_COPY):  # to its end, so gzip checks its CRC and length
        pass
    return _contents(small, digests, staging)


def _unpack(fh: IO[bytes], dest: Path) -> str:
    """One member into ``dest``, its digest taken on the way; read errors (a corrupt
    stream) pass through to be worded by ``read``."""
    try:
        dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except (NotADirectoryError, FileExistsError):
        raise ArchiveError(f"member {dest.name!r} clashes with another: refused") from None
    except OSError as exc:
        raise _cannot_unpack(exc) from None
    sha = hashlib.sha256()
    with os.fdopen(fd, "wb") as out:
        for block in iter(lambda: fh.read(_COPY), b""):
            sha.update(block)
            try:
                out.write(block)
            except OSError as exc:
                raise _cannot_unpack(exc) from None
    return sha.hexdigest()


def _cannot_unpack(exc: OSError) -> ZapvisorError:
    return ZapvisorError(f"cannot unpack the backup: {exc.strerror or exc}")


def _contents(small: dict[str, bytes], digests: dict[str, str], staging: Path) -> Contents:
    try:
        manifest = json.loads(small.pop(MANIFEST))
    except KeyError:
        raise ArchiveError(f"not a zapvisor backup (no {MANIFEST})") from None
    except ValueError as exc:
        raise ArchiveError(f"its {MANIFEST} is not JSON ({exc})") from None
    digests.pop(MANIFEST, None)
    found = manifest.get("format") if isinstance(manifest, dict) else None
    if found not in READS or isinstance(found, bool):
        reads = ", ".join(map(str, READS))
        raise ArchiveError(
            f"backup format {found!r} is not one this zapvisor reads ({reads}): "
            "restore it with a newer zapvisor"
        )
    listed = manifest.get("members")
    if not isinstance(listed, dict) or set(listed) != set(digests):
        missing = sorted(set(listed or {}) - set(digests))
        extra = sorted(set(digests) - set(listed or {}))
        raise ArchiveError(
            f"its members do not match its manifest (missing {missing}, extra {extra})"
        )
    for name, digest in digests.items():
        if digest != listed[name]:
            raise ArchiveError(f"member {name} is corrupt (its SHA-256 does not match)")
    others = {name for name in digests if not name.startswith(FILES)}
    if others != _SMALL[found]:
        raise ArchiveError(
            f"not a complete format {found} backup (it holds {sorted(others)}, "
            f"not {sorted(_SMALL[found])})"
        )
    lines = WEBHOOK_LINES in digests
    rows = WHATSMEOW in digests
    return Contents(
        manifest=manifest,
        sessions=_list(small, SESSIONS),
        webhooks=[] if lines else _list(small, WEBHOOKS),
        files=sorted(name[len(FILES) :] for name in digests if name.startswith(FILES)),
        store_auth=_list(small, STORE_AUTH) if found >= 2 else [],
        webhook_lines=staging / WEBHOOK_LINES if lines else None,
        whatsmeow_lines=staging / WHATSMEOW if rows else None,
    )


def _check_member(info: tarfile.TarInfo, seen: dict[str, str]) -> None:
    name = info.name
    parts = name.split("/")
    if not info.isfile():
        raise ArchiveError(f"member {name!r} is not a plain file: refused")
    if name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ArchiveError(f"member {name!r} points outside the backup: refused")
    if name in seen:
        raise ArchiveError(f"member {name!r} appears twice: refused")
    if name not in (MANIFEST, SESSIONS, WEBHOOKS, STORE_AUTH, *_LINES) and not (
        name.startswith(FILES + "tokens/") or name.startswith(FILES + "secrets/")
    ):
        raise ArchiveError(f"member {name!r} is not part of a zapvisor backup: refused")


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=1, default=str).encode("utf-8")


def _list(members: dict[str, bytes], name: str) -> list[dict[str, Any]]:
    try:
        value = json.loads(members[name])
    except KeyError:
        raise ArchiveError(f"not a zapvisor backup (no {name})") from None
    except ValueError as exc:
        raise ArchiveError(f"its {name} is not JSON ({exc})") from None
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ArchiveError(f"its {name} is not a list of objects")
    return value
