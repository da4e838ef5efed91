"""What a runner reads at start without the libraries it used to import for it
(tests/test_runner_lean.py checks they stay unloaded): its options as supervisord gives
them, `runtime.env` as zapvisor writes it, and the event ids it makes. Each must answer
exactly what the library answers (argparse, python-dotenv, uuid4)."""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from dotenv import dotenv_values

from ecosystem.paths import StatePaths
from ecosystem.runtime_env import read_runtime_settings, runtime_values
from ecosystem.settings import make_settings
from ecosystem.supctl.render import runner_command
from ecosystem.supctl.statefiles import write_runtime_env
from ecosystem.webhook_events import new_event, uuid4_hex
from runner.__main__ import Args, parse_args
from tests.conftest import ROOT


def by_argparse(words: list[str]) -> Args:
    parser = argparse.ArgumentParser(exit_on_error=False)
    parser.add_argument("--home", required=True, type=Path)
    parser.add_argument("--session", required=True)
    parser.add_argument("--port", required=True, type=int)
    ns = parser.parse_args(words)
    return Args(ns.home, ns.session, ns.port)


@pytest.mark.parametrize(
    "words",
    [
        shlex.split(runner_command("py", Path("/var/zv home"), "sales-1", 8001))[3:],
        ["--home", "/h", "--session", "s", "--port", "0008001"],
        ["--session", "s", "--home", "/h", "--port", "8001"],  # another order
        ["--home=/h", "--session", "s", "--port", "8001"],
        ["--home", "/h", "--session", "s", "--port", "80", "--port", "81"],  # the last
    ],
)
def test_the_options_read_as_argparse_reads_them(words: list[str]) -> None:
    assert parse_args(words) == by_argparse(words)


def test_a_mistake_or_help_is_still_argparse_s_answer() -> None:
    for words, code, said in [
        (["--home", "/h", "--session", "s", "--port", "x"], 2, "invalid int value: 'x'"),
        (["--home", "/h", "--session", "-s", "--port", "1"], 2, "expected one argument"),
        (["--home", "/h", "--port", "1"], 2, "required: --session"),
        (["--help"], 0, "normally started by supervisord"),
    ]:
        proc = subprocess.run(
            [sys.executable, "-m", "runner", *words],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == code and said in proc.stdout + proc.stderr, words


def test_runtime_env_as_zapvisor_writes_it_reads_as_dotenv_reads_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    paths = StatePaths(home)
    paths.ensure()
    settings = make_settings(home=home, base_port=8100, webhook_timeout=3.5)
    write_runtime_env(paths, settings)
    values = runtime_values(paths.runtime_env)
    assert values == dotenv_values(paths.runtime_env) and values["BASE_PORT"] == "8100"
    assert read_runtime_settings(paths.runtime_env, home) == settings


@pytest.mark.parametrize(
    "text",
    [
        "A='x\\\\y'\n",  # dotenv's escapes in single quotes
        "A='${HOME}'\n",  # and its interpolation
        "export A='x'\n",
        "A=x # comment\n",
        'A="a\\nb"\n',
        "A='x'",  # no final newline
        "A='x'\r\nB='y'\r\n",
        "",
    ],
)
def test_any_other_runtime_env_is_dotenv_s_to_read(tmp_path: Path, text: str) -> None:
    env = tmp_path / "runtime.env"
    env.write_bytes(text.encode())
    want = {k: v for k, v in dotenv_values(env).items() if v is not None}
    assert runtime_values(env) == want
    assert runtime_values(tmp_path / "missing.env") == {}


def test_event_ids_are_uuid4_hex() -> None:
    seen = set()
    for _ in range(2000):
        digits = uuid4_hex()
        made = uuid.UUID(hex=digits)
        assert made.hex == digits and made.version == 4 and made.variant == uuid.RFC_4122
        seen.add(digits)
    assert len(seen) == 2000
    event = new_event("s", "connection_change", {})
    assert event.event_id == event.payload["id"] and len(event.event_id) == 36
