"""`zapvisor backup` / `restore`, for real: sim sessions on a real supervisord, the CLI
as separate processes. The WhatsApp side is the sim connector (no WhatsApp here)."""

from __future__ import annotations

import json
import shutil
import stat
import urllib.request

import pytest

from ecosystem import backup_archive
from tests.conftest import Env, free_port_block, wait_for

pytestmark = pytest.mark.e2e

PASSPHRASE = "correct horse battery staple"


def _status(port: int, token: str) -> dict[str, object]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/status", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(req, timeout=3) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def _connected(zv: Env, name: str) -> dict[str, object] | None:
    shown = zv.json("show", name)
    return shown if shown["status"] == "connected" and shown["pid"] else None


def test_backup_wipe_restore_comes_back_connected_without_a_scan(zv: Env) -> None:
    dead_port = free_port_block(1)  # nothing listens: the events stay undelivered
    zv.json("create", "loja-1", "--connector", "sim")
    zv.json(
        "create", "loja-2", "--connector", "sim", "--webhook-url", f"http://127.0.0.1:{dead_port}/"
    )
    zv.json("create", "parada", "--connector", "sim", "--stopped")
    zv.cli("secret", "loja-1", "openai", stdin="sk-test-loja-1\n")  # the bot's own key
    phones = {}
    for name in ("loja-1", "loja-2"):
        phones[name] = zv.json("sim-scan", name)["phone"]
        assert phones[name]
    tokens = {n: zv.cli("token", n).stdout.strip() for n in ("loja-1", "loja-2", "parada")}
    secret = zv.cli("webhooks", "loja-2", "--secret").stdout.strip()
    pending = wait_for(lambda: zv.json("webhooks", "loja-2")["counts"]["pending"] or None)
    outbox = zv.json("webhooks", "loja-2", "-n", "100")["deliveries"]
    events_before = {d["event_id"] for d in outbox}

    archive = zv.home.parent / "zv.tar.gz"
    report = zv.json("backup", "-o", str(archive))
    assert report["sessions"] == ["loja-1", "loja-2", "parada"]
    assert report["webhooks"] >= pending and not report["encrypted"]
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    again = zv.cli("backup", "-o", str(archive), check=False)
    assert again.returncode != 0 and "already exists" in again.stderr

    zv.cli("shutdown")
    shutil.rmtree(zv.home)

    restored = zv.json("restore", str(archive))
    assert restored["sessions"] == ["loja-1", "loja-2", "parada"]
    assert restored["ports"] == {"loja-1": zv.base_port, "loja-2": zv.base_port + 1,
                                 "parada": zv.base_port + 2}  # fmt: skip
    for name in ("loja-1", "loja-2"):
        shown = wait_for(lambda n=name: _connected(zv, n), timeout=30)
        assert shown["phone"] == phones[name]
        assert shown["qr_payload"] is None
        # the same API token works against the new runner
        assert _status(int(str(shown["port"])), tokens[name])["status"] == "connected"
    assert zv.json("show", "parada")["desired_state"] == "stopped"
    assert zv.json("show", "parada")["pid"] is None
    assert {n: zv.cli("token", n).stdout.strip() for n in tokens} == tokens
    assert zv.cli("webhooks", "loja-2", "--secret").stdout.strip() == secret
    after = {d["event_id"] for d in zv.json("webhooks", "loja-2", "-n", "100")["deliveries"]}
    assert events_before <= after
    # no scan happened here: the audit trail has the restore and no pairing
    trail = zv.json("events", "loja-1", "-n", "100")
    assert any(e["action"] == "restore" for e in trail)
    assert oct(stat.S_IMODE((zv.home / "tokens" / "loja-1").stat().st_mode)) == oct(0o700)
    assert stat.S_IMODE((zv.home / "secrets" / "loja-1.token").stat().st_mode) == 0o600
    key = zv.home / "secrets" / "loja-1.openai-key"
    assert key.read_text().strip() == "sk-test-loja-1" and stat.S_IMODE(key.stat().st_mode) == 0o600


def test_corrupt_truncated_and_existing_are_refused_changing_nothing(zv: Env) -> None:
    zv.json("create", "unica", "--connector", "sim")
    zv.json("sim-scan", "unica")
    archive = zv.home.parent / "b.tar.gz"
    zv.json("backup", "-o", str(archive))
    data = archive.read_bytes()
    before = zv.json("list")

    def refused(blob: bytes, *extra: str) -> str:
        bad = zv.home.parent / "bad.tar.gz"
        bad.write_bytes(blob)
        proc = zv.cli("restore", str(bad), *extra, check=False)
        assert proc.returncode == 65, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
        return proc.stderr

    assert "truncated" in refused(data[: len(data) // 2], "--force")
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    assert "corrupt" in refused(bytes(flipped), "--force")
    assert "not a complete zapvisor backup" in refused(b"hello", "--force")
    missing = zv.cli("restore", str(zv.home.parent / "nope.tar.gz"), check=False)
    assert missing.returncode == 65 and "cannot read" in missing.stderr

    exists = zv.cli("restore", str(archive), check=False)
    assert exists.returncode == 73 and "unica" in exists.stderr and "--force" in exists.stderr
    after = zv.json("list")
    assert [(s["name"], s["pid"], s["status"]) for s in after] == [
        (s["name"], s["pid"], s["status"]) for s in before
    ]

    forced = zv.json("restore", str(archive), "--force")
    assert forced["replaced"] == ["unica"]
    wait_for(lambda: _connected(zv, "unica"), timeout=30)


def test_encrypted_backup_needs_its_passphrase(zv: Env) -> None:
    zv.json("create", "segredo", "--connector", "sim", "--stopped")
    archive = zv.home.parent / "b.tar.gz.enc"
    short = zv.cli("backup", "--encrypt", "--passphrase-stdin", "-o", str(archive),
                   stdin="short\n", check=False)  # fmt: skip
    assert short.returncode == 65 and "too short" in short.stderr and not archive.exists()
    no_tty = zv.cli("backup", "--encrypt", "-o", str(archive), check=False)
    assert no_tty.returncode == 65 and "ZAPVISOR_BACKUP_PASSPHRASE" in no_tty.stderr
    zv.cli("backup", "--encrypt", "--passphrase-stdin", "-o", str(archive), stdin=PASSPHRASE)
    blob = archive.read_bytes()
    assert blob.startswith(backup_archive.ENCRYPTED_MAGIC) and b"segredo" not in blob
    assert PASSPHRASE.encode() not in blob

    zv.cli("delete", "segredo", "--purge", "--yes")
    wrong = zv.cli("restore", str(archive), "--passphrase-stdin", stdin="not it at all\n",
                   check=False)  # fmt: skip
    assert wrong.returncode == 65 and "wrong passphrase" in wrong.stderr
    assert zv.json("list") == []
    zv.extra["ZAPVISOR_BACKUP_PASSPHRASE"] = PASSPHRASE  # the environment works too
    assert zv.json("restore", str(archive))["sessions"] == ["segredo"]
