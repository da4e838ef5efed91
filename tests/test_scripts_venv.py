"""scripts/run and scripts/test share one .venv: the one installed with the test tools
serves `run` as it is, so running one after the other reinstalls nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def _bash(script: str, venv: Path, extras: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "ZV_VENV": str(venv), "ZV_EXTRAS": extras}
    return subprocess.run(
        ["bash", "-c", f"source scripts/lib/venv.sh && {script}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_run_after_test_and_back_reinstall_nothing(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"  # this suite's own interpreter, zapvisor installed
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    want = _bash("zv_source_hash", venv, "").stdout.strip()
    stamp = venv / ".zapvisor-installed"
    stamp.write_text(f"{want} dev\n")  # as ./scripts/test leaves it

    for extras in ("", "dev", ""):  # ./scripts/run, ./scripts/test, ./scripts/run
        out = _bash("zv_ensure_venv", venv, extras)
        assert out.returncode == 0, out.stderr
        assert out.stderr == "", f"with ZV_EXTRAS={extras!r}: {out.stderr}"
        assert stamp.read_text() == f"{want} dev\n"
