"""A fleet file: `plan -f` shows the difference and changes nothing, `apply -f` makes
exactly that change (untouched runners keep their pids), twice is a no-op, `export`
round-trips, a bad file is refused whole with its line. Real supervisord, sim runners,
the CLI as separate processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Env

pytestmark = pytest.mark.e2e

FLEET = """\
# the shop's numbers
[sessions.alfa]
connector = "sim"
description = "loja centro"

[sessions.bravo]
connector = "sim"

[sessions.charlie]
connector = "sim"
state = "stopped"
webhook_events = ["message_received"]

[sessions.charlie.ai_config]
model = "small"
temperature = 0.2
"""


def _facts(zv: Env) -> dict[str, tuple[Any, ...]]:
    return {
        s["name"]: (s["pid"], s["description"], s["desired_state"], s["ai_config"])
        for s in zv.json("list")
    }


def _write(zv: Env, text: str, name: str = "zapvisor.toml") -> str:
    path = zv.home.parent / name
    path.write_text(text)
    return str(path)


def test_plan_apply_twice_prune_and_export(zv: Env) -> None:
    zv.json("create", "alfa", "--connector", "sim", "--description", "old")
    zv.json("create", "bravo", "--connector", "sim")
    zv.json("create", "delta", "--connector", "sim")
    fleet = _write(zv, FLEET)
    before = _facts(zv)

    plan = zv.json("plan", "-f", fleet)
    assert [(s["action"], s["name"], s["fields"]) for s in plan["steps"]] == [
        ("change", "alfa", ["description"]),
        ("create", "charlie", []),
    ]
    assert plan["unchanged"] == ["bravo"] and plan["left_alone"] == ["delta"]
    text = zv.cli("plan", "-f", fleet).stdout
    assert "~ change alfa" in text and "description: 'old' → 'loja centro'" in text
    assert "+ create charlie" in text and "left alone" in text and "delta" in text
    assert _facts(zv) == before, "plan changed something"

    declined = zv.cli("apply", "-f", fleet, check=False)
    assert declined.returncode == 2 and "--yes" in declined.stderr
    assert _facts(zv) == before

    zv.cli("apply", "-f", fleet, "--yes")
    after = _facts(zv)
    for name in ("alfa", "bravo", "delta"):
        assert after[name][0] == before[name][0], f"{name}'s runner was restarted"
    assert after["alfa"][1] == "loja centro"
    assert after["charlie"] == (None, "", "stopped", {"model": "small", "temperature": 0.2})
    assert zv.json("show", "charlie")["webhook_events"] == ["message_received"]

    again = zv.cli("apply", "-f", fleet, "--yes")
    assert "no changes" in again.stdout
    assert _facts(zv) == after

    pruned = zv.json("plan", "-f", fleet, "--prune")
    assert [(s["action"], s["name"]) for s in pruned["steps"]] == [("delete", "delta")]

    stopped = FLEET.replace("[sessions.bravo]\n", '[sessions.bravo]\nstate = "stopped"\n')
    stop_bravo = _write(zv, stopped, "stop.toml")
    steps = zv.json("plan", "-f", stop_bravo)["steps"]
    assert [(s["action"], s["name"]) for s in steps] == [("stop", "bravo")]
    switch = _write(zv, FLEET.replace('connector = "sim"\ndescription', 'connector = "neonize"\n'
                                      'description'), "switch.toml")  # fmt: skip
    steps = zv.json("plan", "-f", switch)["steps"]
    assert [(s["action"], s["name"]) for s in steps] == [("change", "alfa"), ("restart", "alfa")]

    exported = zv.home.parent / "exported.toml"
    zv.cli("export", "-o", str(exported))
    assert (exported.stat().st_mode & 0o077) == 0
    assert "[sessions.charlie]" in exported.read_text()
    assert zv.json("plan", "-f", str(exported), "--prune")["steps"] == []


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ('[sessions.ok]\nconnector = "sim"\ncolour = "blue"\n', 3, "unknown key 'colour'"),
        ('[sessions."Bad Name"]\nconnector = "sim"\n', 1, "Bad Name"),
        ('[sessions.a]\nconnector = "sim"\n[sessions.a]\nconnector = "sim"\n', 3, ""),
        ('[sessions.a]\nstate = "paused"\n', 1, "running or stopped"),
        ('[sessions.a]\nhost = "nowhere"\n', 1, "not a host of this fleet"),
        ('[sessions.a]\nwebhook_url = "ftp://x"\n', 1, "webhook"),
        ('[sessions.a]\nwebhook_url = { env = "NOT_SET_HERE" }\n', 2, "NOT_SET_HERE"),
        ("[hosts.vps2]\n", 1, "needs target, base_port, max_sessions"),
        ("[host.vps2]\n", 1, "unknown key 'host'"),
        (
            '[hosts.vps2]\ntarget = "a@b"\nbase_port = 3001\nmax_sessions = 2\nport = 1\n',
            5,
            "unknown key 'port' in host vps2",
        ),
        (
            '[hosts.vps2]\ntarget = "a@b:70000"\nbase_port = 3001\nmax_sessions = 2\n',
            1,
            "invalid SSH port '70000'",
        ),
        (
            '[hosts.vps2]\ntarget = "a@b"\nbase_port = 80\nmax_sessions = 2\n',
            1,
            "base_port must be 1024-65535",
        ),
        (
            '[hosts."no/slash"]\ntarget = "a@b"\nbase_port = 3001\nmax_sessions = 2\n',
            1,
            "invalid host name",
        ),
        (
            '[hosts.vps2]\ntarget = "a@b"\nbase_port = 3001\nmax_sessions = 2\nhost_key = "x"\n',
            1,
            "not a SHA256 fingerprint",
        ),
        ('[sessions.a]\nauth = "store"\n', 2, "needs a store the hosts share"),
        ("[sessions.a]\nauth = 1\n", 2, "a.auth is 1: local"),
        ('[sessions.a]\nconnector = "sim"\nfailover = true\n', 3, "its auth is local"),
        (
            '[hosts.a]\ntarget = "u@b"\nbase_port = 3001\nmax_sessions = 5\n'
            '[hosts.c]\ntarget = "v@b"\nbase_port = 3005\nmax_sessions = 5\n',
            5,
            "ports 3005-3009 clash with host a's 3001-3005 (line 4)",
        ),
        (
            '[hosts.a]\ntarget = "u@b"\nbase_port = 3001\nmax_sessions = 5\n'
            '[hosts.c]\ntarget = "u@b"\nbase_port = 4001\nmax_sessions = 5\n',
            5,
            "u@b is already host a (line 4)",
        ),
        (
            '[hosts.a]\ntarget = "u@b"\nbase_port = 3001\nmax_sessions = 5\n'
            'accepts_failover = "no"\n',
            5,
            "accepts_failover is 'no': true or false",
        ),
        # the bot's configs: the rules of `zapvisor config`, the field named once
        ("[sessions.a]\n[sessions.a.ai_config]\ntemperature = 5\n", 1, ": ai_config.temperature"),
        ("[sessions.a]\ntiming_config = { typing_ms = 900 }\n", 1, "timing_config.typing_ms"),
    ],
)
def test_a_bad_file_is_refused_whole_naming_the_line(
    zv: Env, text: str, line: int, what: str
) -> None:
    bad = _write(zv, '[sessions.new-one]\nconnector = "sim"\n\n' + text)
    for command in (["plan", "-f", bad], ["apply", "-f", bad, "--yes"]):
        proc = zv.cli(*command, check=False)
        assert proc.returncode == 65, proc.stderr
        assert f"line {line + 3}" in proc.stderr and what in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    # nothing was created (a create is in the audit trail), supervisord never started
    assert zv.json("events") == [] and zv.supervisord_pid() is None


def test_hosts_in_a_file_need_a_store_every_host_reaches(zv: Env) -> None:
    """SQLite stays on one machine: a file with a host is refused as `hosts add` is."""
    fleet = _write(zv, '[hosts.vps2]\ntarget = "deploy@192.0.2.7:2222"\nbase_port = 3001\n'
                       'max_sessions = 5\n\n[sessions.a]\nconnector = "sim"\n')  # fmt: skip
    for command in (["plan", "-f", fleet], ["apply", "-f", fleet, "--yes"]):
        proc = zv.cli(*command, check=False)
        assert proc.returncode == 78, proc.stderr
        assert "line 1: host vps2" in proc.stderr and "zapvisor db copy" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    assert zv.json("events") == [] and zv.supervisord_pid() is None


def test_unreadable_file(zv: Env, tmp_path: Path) -> None:
    proc = zv.cli("plan", "-f", str(tmp_path / "missing.toml"), check=False)
    assert proc.returncode == 65 and "cannot read" in proc.stderr
