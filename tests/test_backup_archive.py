"""The backup archive on its own (no supervisord): written and read as streams, every
corruption refused before a file is used, sealed chunks that cannot be cut, swapped or
extended, and backups sealed whole (before chunking) still read."""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from ecosystem import backup_archive, backup_seal
from ecosystem.backup_archive import ArchiveError

PASSPHRASE = "correct horse battery staple"
BIG = os.urandom(3 * backup_seal.CHUNK + 1234)  # incompressible: several sealed chunks


def _archive(passphrase: str | None = None, big: bytes = BIG) -> bytes:
    out = io.BytesIO()
    writer = backup_archive.Writer(out, passphrase)
    writer.add_json(backup_archive.SESSIONS, [{"name": "a"}])
    writer.add_json(backup_archive.WEBHOOKS, [])
    writer.add_bytes("files/tokens/a/neonize.db", big)
    writer.add_bytes("files/secrets/a.token", b"t0k3n")
    writer.finish({"host": "here"})
    return out.getvalue()


def _read(blob: bytes, staging: Path, passphrase: str | None = None) -> backup_archive.Contents:
    staging.mkdir(exist_ok=True)
    return backup_archive.read(io.BytesIO(blob), passphrase, staging)


@pytest.mark.parametrize("passphrase", [None, PASSPHRASE])
def test_round_trip_unpacks_files_private(tmp_path: Path, passphrase: str | None) -> None:
    blob = _archive(passphrase)
    got = _read(blob, tmp_path / "s", passphrase)
    assert got.sessions == [{"name": "a"}] and got.manifest["host"] == "here"
    assert got.files == ["secrets/a.token", "tokens/a/neonize.db"]
    db = tmp_path / "s" / "tokens" / "a" / "neonize.db"
    assert db.read_bytes() == BIG and stat.S_IMODE(db.stat().st_mode) == 0o600
    assert (tmp_path / "s" / "secrets" / "a.token").read_bytes() == b"t0k3n"


def test_sealed_chunks_cannot_be_cut_swapped_flipped_or_extended(tmp_path: Path) -> None:
    blob = _archive(PASSPHRASE)
    head = backup_seal.MAGIC_LEN + 16 + 7
    block = backup_seal.CHUNK + 16
    chunks = [blob[i : i + block] for i in range(head, len(blob), block)]
    assert len(chunks) >= 3
    cut_at_boundary = blob[: head + 2 * block]
    swapped = blob[:head] + chunks[1] + chunks[0] + b"".join(chunks[2:])
    flipped = bytearray(blob)
    flipped[head + block + 100] ^= 1
    cases = (cut_at_boundary, swapped, bytes(flipped), blob + b"more", blob[:-1])
    for n, bad in enumerate(cases):
        with pytest.raises(ArchiveError, match="corrupt or truncated"):
            _read(bad, tmp_path / f"s{n}", PASSPHRASE)
    with pytest.raises(ArchiveError, match="wrong passphrase"):
        _read(blob, tmp_path / "s", "another passphrase")
    with pytest.raises(ArchiveError, match="encrypted"):
        _read(blob, tmp_path / "s", None)


def test_plain_archive_cut_or_flipped_is_refused(tmp_path: Path) -> None:
    blob = _archive()
    for n, bad in enumerate((blob[: len(blob) // 2], blob[:-4], b"hello")):
        with pytest.raises(ArchiveError, match=r"not a complete zapvisor backup|corrupt"):
            _read(bad, tmp_path / f"s{n}")
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 0xFF
    with pytest.raises(ArchiveError, match="corrupt"):
        _read(bytes(flipped), tmp_path / "f")


def test_a_backup_sealed_whole_is_still_read(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    plain = _archive(big=b"small")
    salt, nonce = os.urandom(16), os.urandom(12)
    key = backup_seal._key(PASSPHRASE, salt)
    sealed = AESGCM(key).encrypt(nonce, plain, backup_seal.MAGIC_WHOLE)
    blob = backup_seal.MAGIC_WHOLE + salt + nonce + sealed
    got = _read(blob, tmp_path / "s", PASSPHRASE)
    assert got.files == ["secrets/a.token", "tokens/a/neonize.db"]


def _tar(members: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue())


@pytest.mark.parametrize(
    "name", ["files/tokens/../../etc/passwd", "/etc/passwd", "files/elsewhere/x", "other.json"]
)
def test_members_outside_the_backup_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ArchiveError, match="refused"):
        _read(_tar({name: b"x"}), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_member_not_in_the_manifest_is_refused(tmp_path: Path) -> None:
    raw = io.BytesIO(gzip.decompress(_archive(big=b"{}")))
    members = {}
    with tarfile.open(fileobj=raw) as tar:
        for info in tar:
            fh = tar.extractfile(info)
            assert fh is not None
            members[info.name] = fh.read()
    members["files/tokens/a/extra"] = b"sneaked in"
    with pytest.raises(ArchiveError, match="do not match its manifest"):
        _read(_tar(members), tmp_path / "s")
    members.pop("files/tokens/a/extra")
    members["files/tokens/a/neonize.db"] = b"{ }"
    with pytest.raises(ArchiveError, match="SHA-256"):
        _read(_tar(members), tmp_path / "t")
