"""scripts/install-systemd.sh: the unit it renders, checked by systemd's own parser."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "install-systemd.sh"
ZAPVISOR = Path(sys.executable).parent / "zapvisor"


def render(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), "--print", "--user", "root", "--zapvisor", str(ZAPVISOR), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_unit_renders_the_service(tmp_path: Path) -> None:
    out = render("--home", str(tmp_path / "state"), "--workdir", str(tmp_path))
    assert out.returncode == 0, out.stderr
    unit = out.stdout
    assert f"ExecStart={ZAPVISOR} serve\n" in unit
    assert f"ExecStop={ZAPVISOR} shutdown\n" in unit
    assert f"Environment=ZAPVISOR_HOME={tmp_path / 'state'}\n" in unit
    assert f"WorkingDirectory={tmp_path}\n" in unit
    assert "Restart=on-failure" in unit and "User=root" in unit
    assert "@" not in unit.replace("root@", "").split("[Unit]")[1], "every placeholder filled"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--home", "/tmp/with space"], "cannot hold safely"),
        (["--home", "/tmp/100%"], "cannot hold safely"),
        (["--home", "relative/dir"], "is not an absolute path"),
        (["--user", "no-such-user-zv"], "no user named"),
        (["--name", "bad name"], "--name must be"),
        (["--bogus"], "unknown option"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(args: list[str], message: str) -> None:
    out = render(*args)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and message in out.stderr


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    out = render("--home", str(tmp_path / "state"), "--workdir", str(tmp_path))
    unit = tmp_path / "zapvisor-test.service"
    unit.write_text(out.stdout)
    verified = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    # any line about our unit is a warning we want to hear about (unknown keys…)
    complaints = [ln for ln in verified.stderr.splitlines() if unit.name in ln]
    assert verified.returncode == 0 and not complaints, verified.stderr

    # and the check has teeth: a broken unit is refused
    unit.write_text(out.stdout.replace("ExecStart=/", "ExecStart=relative/"))
    broken = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    assert broken.returncode != 0 or unit.name in broken.stderr


def test_help_prints_the_usage_and_nothing_of_the_script() -> None:
    out = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "--uninstall" in out.stdout
    assert "set -euo" not in out.stdout and "#" not in out.stdout


def test_the_operators_settings_reach_serve_through_a_private_env_file(tmp_path: Path) -> None:
    """BASE_PORT, MAX_SESSIONS and the store set in the shell used to be lost: the unit
    passed ZAPVISOR_HOME alone. They go to an EnvironmentFile, 0600 (a password may be
    in it), never into the unit (0644) or onto a command line."""
    env = {
        "PATH": "/usr/bin:/bin",
        "BASE_PORT": "4100",
        "MAX_SESSIONS": "7",
        "ZAPVISOR_DATABASE_URL": 'postgresql://zv:pa"ss\\w@db/zv',
        "ZAPVISOR_HOME": str(tmp_path / "ignored"),
        "UNRELATED": "x",
    }
    args = ["--user", "root", "--zapvisor", str(ZAPVISOR), "--home", str(tmp_path / "state")]
    shown = subprocess.run(
        [str(SCRIPT), "--print", *args], env=env, capture_output=True, text=True, timeout=30
    )
    assert shown.returncode == 0, shown.stderr
    assert "EnvironmentFile=-/etc/zapvisor/zapvisor.env\n" in shown.stdout
    assert "would hold: BASE_PORT MAX_SESSIONS ZAPVISOR_DATABASE_URL" in shown.stdout
    assert "pa" not in shown.stdout.split("[Install]")[1], "values are not printed"

    dest = tmp_path / "dest"
    done = subprocess.run(
        [str(SCRIPT), *args],
        env=env | {"DESTDIR": str(dest)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    env_file = dest / "etc" / "zapvisor" / "zapvisor.env"
    assert (env_file.stat().st_mode & 0o777) == 0o600
    assert env_file.read_text() == (
        'BASE_PORT="4100"\nMAX_SESSIONS="7"\n'
        'ZAPVISOR_DATABASE_URL="postgresql://zv:pa\\"ss\\\\w@db/zv"\n'
    )
    unit = (dest / "etc" / "systemd" / "system" / "zapvisor.service").read_text()
    assert "pa\\" not in unit and "4100" not in unit
