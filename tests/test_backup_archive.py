"""The backup archive on its own (no supervisord): written and read as streams, every
corruption refused before a file is used, sealed chunks that cannot be cut, swapped or
extended, backups sealed whole (before chunking) still read, and archives of formats 1
(before store auth and webhook lines) and 2 (before whatsmeow's rows) still read."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from ecosystem import backup_archive, backup_seal
from ecosystem.backup_archive import ArchiveError

PASSPHRASE = "correct horse battery staple"
AUTH = [{"kind": "sim", "session_name": "a", "device": "dev-1", "phone": "5511999"}]
DEVICE = "1:2@s.whatsapp.net"
WHATSMEOW = [{"table": "whatsmeow_device", "device": DEVICE, "row": {"jid": DEVICE}, "bytea": []}]
EVENTS = [{"event_id": f"e{i}", "session_name": "a", "body": "olá\n" * i} for i in range(3)]
BIG = os.urandom(3 * backup_seal.CHUNK + 1234)  # incompressible: several sealed chunks


def _archive(passphrase: str | None = None, big: bytes = BIG) -> bytes:
    out = io.BytesIO()
    writer = backup_archive.Writer(out, passphrase)
    writer.add_json(backup_archive.SESSIONS, [{"name": "a"}])
    writer.add_json(backup_archive.STORE_AUTH, AUTH)
    assert writer.add_lines(backup_archive.WEBHOOK_LINES, iter(EVENTS)) == len(EVENTS)
    assert writer.add_lines(backup_archive.WHATSMEOW, iter(WHATSMEOW)) == 1
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
    assert got.format == backup_archive.FORMAT == 3
    assert got.files == ["secrets/a.token", "tokens/a/neonize.db"]
    assert got.store_auth == AUTH and got.webhooks == []
    assert list(got.webhook_rows()) == EVENTS
    assert list(got.whatsmeow_rows()) == WHATSMEOW
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


def _v1(members: dict[str, bytes], **manifest: object) -> bytes:
    """An archive as zapvisor wrote format 1: webhooks.json, no store auth."""
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in members.items()}
    head = {"host": "old", "format": 1, "members": digests, **manifest}
    return _tar({**members, backup_archive.MANIFEST: json.dumps(head).encode()})


def test_a_format_1_backup_is_still_read(tmp_path: Path) -> None:
    blob = _v1(
        {
            backup_archive.SESSIONS: json.dumps([{"name": "a"}]).encode(),
            backup_archive.WEBHOOKS: json.dumps(EVENTS).encode(),
            "files/tokens/a/sim-auth.json": b"{}",
        }
    )
    got = _read(blob, tmp_path / "s")
    assert got.format == 1 and got.store_auth == [] and got.webhook_lines is None
    assert list(got.webhook_rows()) == EVENTS
    assert got.files == ["tokens/a/sim-auth.json"]


def test_a_format_2_backup_is_still_read(tmp_path: Path) -> None:
    """Format 2: store auth and webhook lines, no whatsmeow rows."""
    members = {
        backup_archive.SESSIONS: json.dumps([{"name": "a"}]).encode(),
        backup_archive.STORE_AUTH: json.dumps(AUTH).encode(),
        backup_archive.WEBHOOK_LINES: b"".join(json.dumps(e).encode() + b"\n" for e in EVENTS),
    }
    got = _read(_v1(members, format=2), tmp_path / "s")
    assert got.format == 2 and got.store_auth == AUTH and got.whatsmeow_lines is None
    assert list(got.webhook_rows()) == EVENTS and list(got.whatsmeow_rows()) == []


@pytest.mark.parametrize(
    ("members", "fmt", "match"),
    [
        ({backup_archive.SESSIONS: b"[]", backup_archive.WEBHOOKS: b"[]"}, 2, "format 2"),
        ({backup_archive.SESSIONS: b"[]", backup_archive.STORE_AUTH: b"[]"}, 2, "format 2"),
        ({backup_archive.SESSIONS: b"[]", backup_archive.WEBHOOK_LINES: b""}, 1, "format 1"),
        ({backup_archive.SESSIONS: b"[]", backup_archive.STORE_AUTH: b"[]"}, 3, "format 3"),
        ({backup_archive.SESSIONS: b"[]", backup_archive.WHATSMEOW: b""}, 2, "format 2"),
        ({backup_archive.SESSIONS: b"[]", backup_archive.WEBHOOKS: b"[]"}, 4, "newer zapvisor"),
        ({backup_archive.SESSIONS: b"[]", backup_archive.WEBHOOKS: b"[]"}, True, "format True"),
    ],
)
def test_members_of_another_format_are_refused(
    tmp_path: Path, members: dict[str, bytes], fmt: object, match: str
) -> None:
    with pytest.raises(ArchiveError, match=match):
        _read(_v1(members, format=fmt), tmp_path / "s")


def test_a_bad_webhook_line_is_refused_when_read(tmp_path: Path) -> None:
    """Lines are checked as they are read (restore reads them all before it changes
    anything): a line that is not a JSON object says which."""
    lines = b'{"event_id": "e0"}\n[1, 2]\n'
    blob = _v1(
        {
            backup_archive.SESSIONS: b"[]",
            backup_archive.STORE_AUTH: b"[]",
            backup_archive.WEBHOOK_LINES: lines,
        },
        format=2,
    )
    got = _read(blob, tmp_path / "s")
    with pytest.raises(ArchiveError, match=r"line 2 of its webhooks\.jsonl is not an object"):
        list(got.webhook_rows())


def test_many_webhook_events_go_through_a_file_in_order(tmp_path: Path) -> None:
    """Many events go through a file, one line each, and come back in order."""
    many = ({"event_id": f"e{i}", "payload": "x" * 200} for i in range(40_000))
    out = io.BytesIO()
    writer = backup_archive.Writer(out)
    writer.add_json(backup_archive.SESSIONS, [])
    writer.add_json(backup_archive.STORE_AUTH, [])
    assert writer.add_lines(backup_archive.WEBHOOK_LINES, many) == 40_000
    writer.add_lines(backup_archive.WHATSMEOW, [])
    writer.finish({})
    got = _read(out.getvalue(), tmp_path / "s")
    assert got.webhook_lines is not None and got.webhook_lines.stat().st_size > 8 * 2**20
    ids = [row["event_id"] for row in got.webhook_rows()]
    assert ids[:2] == ["e0", "e1"] and len(ids) == 40_000 and ids[-1] == "e39999"
