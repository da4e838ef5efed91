"""Bad input gets one clear line on stderr, a non-zero exit, and changes nothing."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from tests.conftest import Env

pytestmark = pytest.mark.e2e

HOSTILE = [
    "cliente 001",
    "100%",
    "a;rm -rf",
    "../../etc",
    "ação",
    "UPPER",
    "-x",
    "",
    "a" * 49,
    "a\nb",
    "x/y",
    "%(ENV_HOME)s",
]


def snapshot(folder: Path) -> set[str]:
    return {str(p) for p in folder.rglob("*")} if folder.exists() else set()


def one_line_error(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("zapvisor")
    assert ": error: " in lines[0]
    return lines[0]


def test_hostile_names_are_refused_and_nothing_is_written(zv: Env) -> None:
    zv.cli("list")  # the state dir exists, supervisord runs
    outside = zv.home.parent
    before_outside = snapshot(outside) - snapshot(zv.home)
    cwd_before = set(os.listdir(outside))
    before_home = snapshot(zv.home / "tokens") | snapshot(zv.home / "secrets")
    for name in HOSTILE:
        proc = zv.cli("create", "--", name, check=False)
        assert proc.returncode == 65, (name, proc.stderr)
        line = one_line_error(proc.stderr)
        assert "lowercase letters, digits" in line
    usage = zv.cli("create", "-x", check=False)  # looks like an option: a usage error
    assert usage.returncode == 2 and len(usage.stderr.strip().splitlines()) == 1
    assert zv.json("list") == []
    assert snapshot(zv.home / "tokens") | snapshot(zv.home / "secrets") == before_home
    assert snapshot(outside) - snapshot(zv.home) == before_outside
    assert set(os.listdir(outside)) == cwd_before


def test_duplicates_unknown_sessions_and_bad_values(zv: Env) -> None:
    zv.cli("create", "alpha", "--connector", "sim", "--description", "first")
    dup = zv.cli("create", "alpha", "--connector", "sim", "--description", "second", check=False)
    assert dup.returncode == 73 and "already exists" in one_line_error(dup.stderr)
    assert zv.json("show", "alpha")["description"] == "first"

    for args in (
        ["show", "ghost"],
        ["start", "ghost"],
        ["stop", "ghost"],
        ["restart", "ghost"],
        ["delete", "ghost", "--yes"],
        ["qr", "ghost"],
        ["logs", "ghost"],
        ["config", "ghost", "--description", "x"],
    ):
        proc = zv.cli(*args, check=False)
        assert proc.returncode == 66, (args, proc.stderr)
        assert "no session named 'ghost'" in one_line_error(proc.stderr)

    for args, expect in (
        (["create", "beta", "--ai-config", "{not json"], "--ai-config is not valid JSON"),
        (["create", "beta", "--timing-config", "[1, 2]"], "must be a JSON object"),
        (["create", "beta", "--webhook-url", "ftp://x"], "http:// or https://"),
        (["config", "alpha", "--ai-config", "42"], "must be a JSON object"),
        (["config", "alpha"], "nothing to change"),
    ):
        proc = zv.cli(*args, check=False)
        assert proc.returncode == 65, (args, proc.stderr)
        assert expect in one_line_error(proc.stderr)
    assert [s["name"] for s in zv.json("list")] == ["alpha"]
    assert zv.json("show", "alpha")["ai_config"] == {}


def test_delete_needs_confirmation_without_a_terminal(zv: Env) -> None:
    zv.cli("create", "alpha", "--connector", "sim", "--stopped")
    proc = zv.cli("delete", "alpha", check=False)
    assert proc.returncode == 2
    assert "error: not confirmed: to delete session alpha (port " in one_line_error(proc.stderr)
    assert "pass --yes" in proc.stderr
    proc = zv.cli("logout", "alpha", check=False)
    assert proc.returncode == 2 and "--yes" in one_line_error(proc.stderr)
    assert zv.json("show", "alpha")["name"] == "alpha"


def test_max_sessions_and_ports_held_by_other_processes(make_env) -> None:  # type: ignore[no-untyped-def]
    env: Env = make_env(max_sessions=3)
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", env.base_port))
    blocker.listen()
    try:
        a = env.json("create", "a", "--connector", "sim", "--stopped")
        assert a["port"] == env.base_port + 1, "a port bound by another process was handed out"
        env.json("create", "b", "--connector", "sim", "--stopped")
        full = env.cli("create", "c", "--connector", "sim", "--stopped", check=False)
        assert full.returncode == 75
        line = one_line_error(full.stderr)
        assert f"{env.base_port}-{env.base_port + 2}" in line
        assert f"{env.base_port} held by" in line and f"pid {os.getpid()}" in line
        env.cli("delete", "b", "--yes")
        env.json("create", "c", "--connector", "sim", "--stopped")
        over = env.cli("create", "d", "--connector", "sim", "--stopped", check=False)
        assert over.returncode == 75
    finally:
        blocker.close()
    assert [s["name"] for s in env.json("list")] == ["a", "c"]
    env2: Env = make_env(max_sessions=1)
    env2.json("create", "solo", "--connector", "sim", "--stopped")
    capped = env2.cli("create", "two", "--connector", "sim", "--stopped", check=False)
    assert capped.returncode == 75 and "MAX_SESSIONS (1) reached" in one_line_error(capped.stderr)


def test_bad_settings_and_unusable_state_dir(zv: Env, tmp_path: Path) -> None:
    zv.extra["BASE_PORT"] = "eighty"
    proc = zv.cli("list", check=False)
    assert proc.returncode == 78 and "BASE_PORT" in one_line_error(proc.stderr)
    zv.extra.pop("BASE_PORT")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    zv.extra["ZAPVISOR_HOME"] = str(blocker / "home")
    proc = zv.cli("create", "alpha", "--connector", "sim", check=False)
    assert proc.returncode == 73
    assert "ZAPVISOR_HOME" in one_line_error(proc.stderr)


def test_supervisord_that_cannot_start(zv: Env) -> None:
    zv.home.mkdir(parents=True)
    (zv.home / "supervisor.sock").mkdir()  # something else sits where the socket goes
    proc = zv.cli("create", "alpha", "--connector", "sim", check=False)
    assert proc.returncode == 69, proc.stderr
    assert "supervisord" in one_line_error(proc.stderr)
    (zv.home / "supervisor.sock").rmdir()
    assert zv.json("list") == [], "a failed create left a session behind"
    assert not (zv.home / "secrets" / "alpha.token").exists()
    assert zv.json("create", "alpha", "--connector", "sim")["pid"]


def test_no_command_without_a_terminal_prints_help(zv: Env) -> None:
    proc = zv.cli(check=False)
    assert proc.returncode == 2 and "usage: zapvisor" in proc.stderr
    assert sys.executable  # the CLI ran in a separate process without a TTY


def test_undecodable_text_non_finite_numbers_and_deep_json_are_bad_input(zv: Env) -> None:
    """Undecodable bytes on the command line (Python sees lone surrogates), `\\udcff`
    escapes, NaN/Infinity/1e999 and absurd nesting: exit 65 with one line, on create and
    on config, and nothing is written."""
    zv.cli("create", "alpha", "--connector", "sim", "--stopped", "--ai-config", '{"history": 1}')
    deep = '{"a":' * 5000 + "1" + "}" * 5000
    base = ["create", "v1", "--connector", "sim", "--stopped"]
    cases = [
        ([*base, "--description", "\udcff\udcfe"], "description holds bytes that are not"),
        ([*base, "--ai-config", '{"a": "\\udcff"}'], "--ai-config holds bytes"),
        ([*base, "--ai-config", '{"a": "\udcff"}'], "--ai-config holds bytes"),
        ([*base, "--timing-config", '{"\\udcff": 1}'], "--timing-config holds bytes"),
        ([*base, "--webhook-url", "http://x/\udcff"], "webhook URL holds bytes"),
        ([*base, "--ai-config", deep], "--ai-config is nested deeper than 64 levels"),
        ([*base, "--ai-config", '{"a": NaN}'], "NaN, which is not a JSON number"),
        (["config", "alpha", "--ai-config", deep], "nested deeper than 64 levels"),
        (["config", "alpha", "--timing-config", deep], "nested deeper than 64 levels"),
        (["config", "alpha", "--ai-config", '{"a": NaN}'], "NaN, which is not a JSON number"),
        (["config", "alpha", "--ai-config", '{"a": -Infinity}'], "-Infinity, which is not"),
        (["config", "alpha", "--timing-config", '{"a": 1e999}'], "1e999, out of range"),
        (["config", "alpha", "--description", "\udcff"], "description holds bytes"),
    ]
    for args, expect in cases:
        proc = zv.cli(*args, check=False)
        assert proc.returncode == 65, (args[:4], proc.returncode, proc.stderr[-300:])
        assert expect in one_line_error(proc.stderr), (args[:4], proc.stderr)
        assert "Traceback" not in proc.stderr
    assert [s["name"] for s in zv.json("list")] == ["alpha"]
    shown = zv.json("show", "alpha")
    assert shown["ai_config"] == {"history": 1} and shown["timing_config"] == {}
    assert shown["description"] == ""


def test_control_and_direction_characters_in_a_description_are_refused(zv: Env) -> None:
    """U+009B (CSI on many terminals) or U+202E (right-to-left override) would make
    `show` print something else than what was typed."""
    zv.cli("create", "alpha", "--connector", "sim", "--stopped", "--description", "ok ✓ 👍🏽")
    for bad in ("a\u009b2Jb", "invoice \u202egpj.exe", "a\u2028b", "del\x7f"):
        for args in (
            ["create", "beta", "--connector", "sim", "--stopped", "--description", bad],
            ["config", "alpha", "--description", bad],
        ):
            proc = zv.cli(*args, check=False)
            assert proc.returncode == 65, (bad, proc.stderr)
            assert f"U+{ord(next(c for c in bad if not c.isalnum() and c not in ' .')):04X}" in (
                one_line_error(proc.stderr)
            )
    assert [s["name"] for s in zv.json("list")] == ["alpha"]
    assert zv.json("show", "alpha")["description"] == "ok ✓ 👍🏽"


def test_events_of_an_unknown_name_and_a_scan_that_is_not_possible_now(zv: Env) -> None:
    """`events nope` is 66 like every other command; a deleted session's events still
    show. A scan of a connected session is 75 (not possible now), not 69."""
    proc = zv.cli("events", "nope", check=False)
    assert proc.returncode == 66 and "no session named 'nope'" in one_line_error(proc.stderr)
    proc = zv.cli("events", "No Such", check=False)
    assert proc.returncode == 65 and "lowercase letters" in one_line_error(proc.stderr)

    zv.cli("create", "alpha", "--connector", "sim")
    zv.cli("qr", "alpha", "--wait", "20")
    zv.cli("sim-scan", "alpha")
    again = zv.cli("sim-scan", "alpha", check=False)
    assert again.returncode == 75, again.stderr
    assert "not waiting for a QR scan" in one_line_error(again.stderr)

    zv.cli("delete", "alpha", "--yes")
    actions = [e["action"] for e in zv.json("events", "alpha")]
    assert "create" in actions and "delete" in actions


def test_start_stop_and_restart_pass_changed_settings_to_the_runner(zv: Env) -> None:
    """A setting changed in the environment (or .env) reaches a runner that the operator
    restarts: those commands rewrite runtime.env, as create, delete and apply do."""
    zv.cli("create", "alpha", "--connector", "sim")
    env_file = zv.home / "runtime.env"
    assert "ZAPVISOR_API_RATE_LIMIT='100'" in env_file.read_text()
    for verb, limit in (("restart", "7"), ("stop", "8"), ("start", "9")):
        zv.extra["ZAPVISOR_API_RATE_LIMIT"] = limit
        zv.cli(verb, "alpha")
        assert f"ZAPVISOR_API_RATE_LIMIT='{limit}'" in env_file.read_text(), verb
    # the README's promise both ways: the commands that only look leave it alone
    zv.extra["ZAPVISOR_API_RATE_LIMIT"] = "11"
    for args in (["list"], ["show", "alpha"], ["doctor"], ["events", "alpha"]):
        zv.cli(*args, check=False)
        assert "ZAPVISOR_API_RATE_LIMIT='9'" in env_file.read_text(), args
    for args, limit in ((["apply"], "11"), (["delete", "alpha", "--yes"], "12")):
        zv.extra["ZAPVISOR_API_RATE_LIMIT"] = limit
        zv.cli(*args)
        assert f"ZAPVISOR_API_RATE_LIMIT='{limit}'" in env_file.read_text(), args
