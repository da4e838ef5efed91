"""A full disk, for real: a small tmpfs mounted over one folder of the state dir and
filled up. Commands say so on one line and change nothing; a pairing that could not be
saved is reported as lost, not as a success. Needs root and `mount`; skipped (saying
why) where a tmpfs cannot be mounted."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Env, wait_for
from tests.test_bad_input import one_line_error
from tests.test_session_api import call

pytestmark = pytest.mark.e2e


@contextlib.contextmanager
def full(folder: Path) -> Iterator[None]:
    """``folder`` on a 64 KiB tmpfs holding a copy of what it held, then filled up."""
    folder.mkdir(parents=True, exist_ok=True)
    keep = Path(tempfile.mkdtemp(prefix="zv-keep-"))
    shutil.copytree(folder, keep, dirs_exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        shutil.rmtree(keep)
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        shutil.copytree(keep, folder, dirs_exist_ok=True)
        with contextlib.suppress(OSError), (folder / ".filler").open("wb") as fh:
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
        yield
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
        shutil.rmtree(keep, ignore_errors=True)


def test_a_full_disk_is_one_line_and_loses_no_pairing_silently(zv: Env) -> None:
    zv.cli("create", "alpha", "--connector", "sim")
    zv.cli("qr", "alpha", "--wait", "20")
    port = zv.json("show", "alpha")["port"]
    pid = call(port, "/health", None)[1]["pid"]
    secret = zv.cli("webhooks", "alpha", "--secret").stdout.strip()

    with full(zv.home / "secrets"):
        proc = zv.cli("webhooks", "alpha", "--rotate-secret", check=False)
        assert proc.returncode == 73, proc.stderr
        assert "No space left on device" in one_line_error(proc.stderr)
        assert "Traceback" not in proc.stderr
        assert zv.cli("webhooks", "alpha", "--secret").stdout.strip() == secret

    with full(zv.home / "tokens"):
        proc = zv.cli("sim-scan", "alpha", check=False)
        assert proc.returncode == 69, proc.stderr
        line = one_line_error(proc.stderr)
        assert "not paired" in line and "No space left on device" in line
        shown = zv.json("show", "alpha")
        assert shown["phone"] is None and shown["status"] != "connected"
        assert "pairing lost" in (shown["last_error"] or "")
        assert call(port, "/health", None)[1]["pid"] == pid, "the runner did not crash"

    wait_for(lambda: zv.json("show", "alpha")["status"] == "waiting_scan")
    assert zv.json("sim-scan", "alpha")["status"] == "connected"
    assert (zv.home / "tokens" / "alpha" / "sim-auth.json").exists()
    zv.cli("restart", "alpha")
    assert wait_for(lambda: zv.json("show", "alpha")["status"] == "connected")
