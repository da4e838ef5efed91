"""A backup sealed with a passphrase, written and read as a stream in 64 KiB chunks.

    MAGIC | salt (16) | nonce prefix (7) | chunk | chunk | … | last chunk

Each chunk is AES-256-GCM over up to 64 KiB, its nonce the prefix, the chunk's number
(4 bytes) and a last-chunk flag (1 byte), with the header as associated data: chunks
cannot be reordered, dropped, taken from another backup, and a file cut at a chunk
boundary is refused because its last chunk is not flagged as last (the STREAM
construction of Hoang, Reyhanitabar, Rogaway and Vizár). The key is derived from the
passphrase by scrypt with the random salt. Memory stays at one chunk whatever the size.

Backups made before chunking (``MAGIC_WHOLE``, one GCM seal over the whole archive)
are still read.
"""

from __future__ import annotations

import os
from typing import BinaryIO

from ecosystem.errors import InvalidValue, ZapvisorError

MAGIC = b"ZAPVISOR-BACKUP-AESGCM-2\n"
MAGIC_WHOLE = b"ZAPVISOR-BACKUP-AESGCM-1\n"
MAGIC_LEN = len(MAGIC)
CHUNK = 64 * 1024
_TAG = 16
_SALT = 16
_PREFIX = 7
_NONCE = 12
SCRYPT_N = 2**15
"""scrypt's cost: about 0.1 s and 32 MB to try one passphrase."""
MIN_PASSPHRASE = 8
WRONG = "cannot open this backup: wrong passphrase, or the file is corrupt or truncated"


class ArchiveError(ZapvisorError):
    """A backup archive that cannot be used as it is: corrupt, truncated, not an
    archive, or sealed with another passphrase. Nothing was changed."""

    exit_code = 65


def is_sealed(head: bytes) -> bool:
    return head[:MAGIC_LEN] in (MAGIC, MAGIC_WHOLE)


def check_passphrase(passphrase: str) -> None:
    if len(passphrase) < MIN_PASSPHRASE:
        raise InvalidValue(f"the passphrase is too short: at least {MIN_PASSPHRASE} characters")


def _key(passphrase: str, salt: bytes) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=32, n=SCRYPT_N, r=8, p=1).derive(passphrase.encode("utf-8"))


def _nonce(prefix: bytes, number: int, last: bool) -> bytes:
    if number >= 2**32:
        raise ZapvisorError("the backup is too large to seal (over 256 TiB)")
    return prefix + number.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


class SealWriter:
    """A binary sink that seals what is written to it into ``out``; ``finish`` writes
    the last chunk (without it the file reads as truncated)."""

    def __init__(self, out: BinaryIO, passphrase: str) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        check_passphrase(passphrase)
        salt, self._prefix = os.urandom(_SALT), os.urandom(_PREFIX)
        self._aead = AESGCM(_key(passphrase, salt))
        self._header = MAGIC + salt + self._prefix
        self._out = out
        self._buf = bytearray()
        self._number = 0
        out.write(self._header)

    def write(self, data: bytes) -> int:
        self._buf += data
        # strictly more than a chunk: what is left at the end (1..CHUNK bytes) is the
        # last chunk, so a reader knows a full chunk followed by the end is the last
        while len(self._buf) > CHUNK:
            self._emit(bytes(self._buf[:CHUNK]), last=False)
            del self._buf[:CHUNK]
        return len(data)

    def flush(self) -> None:
        self._out.flush()

    def finish(self) -> None:
        self._emit(bytes(self._buf), last=True)
        self._buf.clear()

    def _emit(self, plain: bytes, *, last: bool) -> None:
        nonce = _nonce(self._prefix, self._number, last)
        self._out.write(self._aead.encrypt(nonce, plain, self._header))
        self._number += 1


class OpenReader:
    """What a sealed stream holds, read as a file (``read(n)``), each chunk checked
    before a byte of it is returned; the end is reached only through the last chunk."""

    def __init__(self, src: BinaryIO, passphrase: str) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        header = _read_full(src, MAGIC_LEN + _SALT + _PREFIX)
        if len(header) < MAGIC_LEN + _SALT + _PREFIX or header[:MAGIC_LEN] != MAGIC:
            raise ArchiveError("not a complete zapvisor backup (truncated)")
        salt = header[MAGIC_LEN : MAGIC_LEN + _SALT]
        self._prefix = header[MAGIC_LEN + _SALT :]
        self._header = header
        self._aead = AESGCM(_key(passphrase, salt))
        self._src = src
        self._ahead = _read_full(src, CHUNK + _TAG)
        self._buf = bytearray()
        self._number = 0
        self._done = False

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._buf) < size):
            self._next()
        if size < 0:
            size = len(self._buf)
        out = bytes(self._buf[:size])
        del self._buf[:size]
        return out

    def _next(self) -> None:
        from cryptography.exceptions import InvalidTag

        block = self._ahead
        if len(block) < _TAG:
            raise ArchiveError("not a complete zapvisor backup (truncated)")
        self._ahead = _read_full(self._src, CHUNK + _TAG)
        last = not self._ahead
        try:
            nonce = _nonce(self._prefix, self._number, last)
            self._buf += self._aead.decrypt(nonce, block, self._header)
        except InvalidTag:
            raise ArchiveError(WRONG) from None
        self._number += 1
        self._done = last


def open_whole(data: bytes, passphrase: str) -> bytes:
    """A backup sealed whole (before chunking), opened."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    body = data[MAGIC_LEN:]
    if len(body) < _SALT + _NONCE + _TAG:
        raise ArchiveError("not a complete zapvisor backup (truncated)")
    salt, nonce, sealed = body[:_SALT], body[_SALT : _SALT + _NONCE], body[_SALT + _NONCE :]
    try:
        return AESGCM(_key(passphrase, salt)).decrypt(nonce, sealed, MAGIC_WHOLE)
    except InvalidTag:
        raise ArchiveError(WRONG) from None


def _read_full(src: BinaryIO, size: int) -> bytes:
    """``size`` bytes, fewer only at the end (a pipe may return less per read)."""
    parts: list[bytes] = []
    left = size
    while left > 0:
        got = src.read(left)
        if not got:
            break
        parts.append(got)
        left -= len(got)
    return b"".join(parts)
