"""The backup archive: one file holding sessions' rows, their WhatsApp auth, API tokens,
webhook secrets and undelivered webhook events (`zapvisor backup` / `restore`).

A gzip'd tar whose first member, ``manifest.json``, lists every other member with its
SHA-256. Reading checks everything before anything is used: gzip's own CRC and length
(a truncated file fails there), the tar structure, each member's digest, and that no
member is anything but a plain file under a known folder (no links, no ``..``).

With a passphrase the whole tar.gz is sealed with AES-256-GCM, the key derived from
the passphrase by scrypt with a random salt: a wrong passphrase and a changed byte are
both refused (the tag does not match); nothing of the contents, not even the session
names, can be read without it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from ecosystem.errors import InvalidValue, ZapvisorError

FORMAT = 1
MANIFEST = "manifest.json"
SESSIONS = "sessions.json"
WEBHOOKS = "webhooks.json"
FILES = "files/"
"""Members under it are files of the state dir, by their path inside it."""
ENCRYPTED_MAGIC = b"ZAPVISOR-BACKUP-AESGCM-1\n"
_SALT = 16
_NONCE = 12
SCRYPT_N = 2**15
"""scrypt's cost: about 0.1 s and 32 MB to try one passphrase."""
MIN_PASSPHRASE = 8


class ArchiveError(ZapvisorError):
    """A backup archive that cannot be used as it is: corrupt, truncated, not an
    archive, or sealed with another passphrase. Nothing was changed."""

    exit_code = 65


@dataclass
class Contents:
    """What an archive holds, every digest checked."""

    manifest: dict[str, Any]
    sessions: list[dict[str, Any]]
    webhooks: list[dict[str, Any]]
    files: dict[str, bytes] = field(default_factory=dict)
    """State-dir relative path → bytes (``tokens/NAME/…``, ``secrets/NAME.token``…)."""


def pack(
    manifest: dict[str, Any],
    sessions: list[dict[str, Any]],
    webhooks: list[dict[str, Any]],
    files: dict[str, bytes],
    passphrase: str | None = None,
) -> bytes:
    """The archive's bytes (sealed when a passphrase is given)."""
    members: dict[str, bytes] = {
        SESSIONS: _json(sessions),
        WEBHOOKS: _json(webhooks),
        **{FILES + path: data for path, data in sorted(files.items())},
    }
    head = dict(manifest)
    head["format"] = FORMAT
    head["members"] = {name: hashlib.sha256(data).hexdigest() for name, data in members.items()}
    raw = io.BytesIO()
    now = int(time.time())
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in ((MANIFEST, _json(head)), *members.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o600
            info.mtime = now
            tar.addfile(info, io.BytesIO(data))
    packed = gzip.compress(raw.getvalue(), compresslevel=6)
    return seal(packed, passphrase) if passphrase is not None else packed


def unpack(data: bytes, passphrase: str | None = None) -> Contents:
    """Check and read an archive; ArchiveError says what is wrong with it."""
    if data.startswith(ENCRYPTED_MAGIC):
        if passphrase is None:
            raise ArchiveError(
                "this backup is encrypted: give its passphrase (ZAPVISOR_BACKUP_PASSPHRASE, "
                "--passphrase-stdin, or type it at the prompt)"
            )
        data = unseal(data, passphrase)
    try:
        raw = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise ArchiveError(
            f"not a complete zapvisor backup (corrupt or truncated: {exc})"
        ) from None
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for info in tar:
                _check_member(info, members)
                fh = tar.extractfile(info)
                if fh is None:  # pragma: no cover - a regular file always has a body
                    raise ArchiveError(f"member {info.name!r} has no contents")
                members[info.name] = fh.read()
    except tarfile.TarError as exc:
        raise ArchiveError(f"not a zapvisor backup (bad tar: {exc})") from None
    try:
        manifest = json.loads(members.pop(MANIFEST))
    except KeyError:
        raise ArchiveError(f"not a zapvisor backup (no {MANIFEST})") from None
    except ValueError as exc:
        raise ArchiveError(f"its {MANIFEST} is not JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise ArchiveError(f"backup format {found!r} is not one this zapvisor reads ({FORMAT})")
    listed = manifest.get("members")
    if not isinstance(listed, dict) or set(listed) != set(members):
        missing = sorted(set(listed or {}) - set(members))
        extra = sorted(set(members) - set(listed or {}))
        raise ArchiveError(
            f"its members do not match its manifest (missing {missing}, extra {extra})"
        )
    for name, data in members.items():
        if hashlib.sha256(data).hexdigest() != listed[name]:
            raise ArchiveError(f"member {name} is corrupt (its SHA-256 does not match)")
    return Contents(
        manifest=manifest,
        sessions=_list(members, SESSIONS),
        webhooks=_list(members, WEBHOOKS),
        files={
            name[len(FILES) :]: data for name, data in members.items() if name.startswith(FILES)
        },
    )


def seal(data: bytes, passphrase: str) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    check_passphrase(passphrase)
    salt, nonce = os.urandom(_SALT), os.urandom(_NONCE)
    key = _key(passphrase, salt)
    return ENCRYPTED_MAGIC + salt + nonce + AESGCM(key).encrypt(nonce, data, ENCRYPTED_MAGIC)


def unseal(data: bytes, passphrase: str) -> bytes:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    body = data[len(ENCRYPTED_MAGIC) :]
    if len(body) < _SALT + _NONCE + 16:
        raise ArchiveError("not a complete zapvisor backup (truncated)")
    salt, nonce, sealed = body[:_SALT], body[_SALT : _SALT + _NONCE], body[_SALT + _NONCE :]
    try:
        return AESGCM(_key(passphrase, salt)).decrypt(nonce, sealed, ENCRYPTED_MAGIC)
    except InvalidTag:
        raise ArchiveError(
            "cannot open this backup: wrong passphrase, or the file is corrupt or truncated"
        ) from None


def check_passphrase(passphrase: str) -> None:
    if len(passphrase) < MIN_PASSPHRASE:
        raise InvalidValue(f"the passphrase is too short: at least {MIN_PASSPHRASE} characters")


def _key(passphrase: str, salt: bytes) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=32, n=SCRYPT_N, r=8, p=1).derive(passphrase.encode("utf-8"))


def _check_member(info: tarfile.TarInfo, seen: dict[str, bytes]) -> None:
    name = info.name
    parts = name.split("/")
    if not info.isfile():
        raise ArchiveError(f"member {name!r} is not a plain file: refused")
    if name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ArchiveError(f"member {name!r} points outside the backup: refused")
    if name in seen:
        raise ArchiveError(f"member {name!r} appears twice: refused")
    if name not in (MANIFEST, SESSIONS, WEBHOOKS) and not (
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
