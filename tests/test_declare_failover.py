"""A fleet file's `auth` and `failover` on real sessions: one host with a real
supervisord, sim runners and a real PostgreSQL (the store that lets auth live in it).
plan shows them as field changes and changes nothing; apply makes exactly those, as
`zapvisor failover` does (restarting only a runner whose auth moved: it reads that when
it starts); twice is a no-op; export round-trips;
an auth change on a session linked to a phone is refused with the reason (it would
need a new QR), and failover with local auth is refused naming the line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Env
from tests.failover_hosts import host_vars

pytestmark = pytest.mark.e2e

FILE = """\
[sessions.alfa]
connector = "sim"
auth = "store"
failover = false

[sessions.bravo]
connector = "sim"
auth = "local"

[sessions.charlie]
connector = "sim"

[sessions.delta]
connector = "sim"
auth = "local"
state = "stopped"
"""


@pytest.fixture
def solo(make_env: Callable[..., Env], pg_dsn: str) -> Env:
    return make_env(**host_vars(pg_dsn, "solo"))


def _facts(zv: Env) -> dict[str, tuple[Any, ...]]:
    return {s["name"]: (s["pid"], s["auth"], s["failover"]) for s in zv.json("list")}


def _write(zv: Env, text: str, name: str = "fleet.toml") -> str:
    path = zv.home.parent / name
    path.write_text(text)
    return str(path)


def test_auth_and_failover_planned_applied_twice_and_exported(solo: Env) -> None:
    zv = solo
    for name in ("alfa", "bravo", "charlie"):
        zv.json("create", name, "--connector", "sim")
    before = _facts(zv)
    assert {n: f[1:] for n, f in before.items()} == {n: ("store", True) for n in before}
    fleet = _write(zv, FILE)

    plan = zv.json("plan", "-f", fleet)
    assert [(s["action"], s["name"], s["fields"]) for s in plan["steps"]] == [
        ("change", "alfa", ["failover"]),
        ("change", "bravo", ["auth"]),
        ("restart", "bravo", []),  # its runner reads where its auth lives when it starts
        ("create", "delta", []),
    ]
    assert plan["unchanged"] == ["charlie"]
    text = zv.cli("plan", "-f", fleet).stdout
    assert "~ change alfa (on solo)\n      failover: on → off" in text
    assert "~ change bravo (on solo)\n      auth: store → local" in text
    assert "+ create delta" in text and "auth: local" in text
    assert _facts(zv) == before, "plan changed something"

    zv.cli("apply", "-f", fleet, "--yes")
    after = _facts(zv)
    assert after["alfa"] == (before["alfa"][0], "store", False)
    assert after["bravo"][1:] == ("local", True)
    assert after["bravo"][0] not in (None, before["bravo"][0]), "bravo was not restarted"
    restarts = [e for e in zv.json("events", "bravo") if e["action"] == "restart"]
    assert len(restarts) == 1, "the plan's one restart, not a second by the auth change"
    assert after["charlie"] == before["charlie"]
    assert after["delta"] == (None, "local", True)
    again = zv.cli("apply", "-f", fleet, "--yes")
    assert "no changes" in again.stdout and _facts(zv) == after

    exported = zv.home.parent / "exported.toml"
    zv.cli("export", "-o", str(exported))
    written = exported.read_text()
    assert '[sessions.alfa]\nhost = "solo"\nconnector = "sim"\nstate = "running"\n' in written
    assert 'auth = "store"\nfailover = false' in written
    bravo = written.split("[sessions.bravo]\n")[1].split("\n\n")[0]
    assert 'auth = "local"' in bravo and "failover" not in bravo  # moot with local auth
    assert zv.json("plan", "-f", str(exported), "--prune")["steps"] == []


def test_an_auth_change_on_a_paired_session_is_refused(solo: Env) -> None:
    """A running session linked to a phone keeps its auth where it is: moving it would
    need a new QR, which an apply must not cause behind the operator's back."""
    zv = solo
    zv.json("create", "paired", "--connector", "sim")
    zv.json("create", "other", "--connector", "sim")
    assert zv.json("sim-scan", "paired")["phone"]
    before = _facts(zv)
    text = FILE.replace("[sessions.alfa]", "[sessions.paired]").replace(
        "[sessions.bravo]", "[sessions.other]"
    )
    fleet = _write(zv, text.replace('auth = "store"\nfailover = false', 'auth = "local"'))
    plan = zv.json("plan", "-f", fleet)
    [step] = [s for s in plan["steps"] if s["name"] == "paired"]
    assert step["fields"] == ["auth"] and "needs a new QR" in step["refused"]
    shown = zv.cli("plan", "-f", fleet).stdout
    assert "! apply refuses it: paired is linked to a phone" in shown
    proc = zv.cli("apply", "-f", fleet, "--yes", check=False)
    assert proc.returncode == 65, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    for said in ("line 3", "zapvisor logout paired", 'keep auth = "store"'):
        assert said in proc.stderr
    assert _facts(zv) == before, "a refused plan changed something"
    assert [s["name"] for s in zv.json("list")] == ["other", "paired"]


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ('[sessions.a]\nconnector = "sim"\nauth = "cloud"\n', 3, "a.auth is 'cloud': local"),
        ('[sessions.a]\nconnector = "sim"\nfailover = "yes"\n', 3, "a.failover is 'yes'"),
        (
            '[sessions.a]\nconnector = "sim"\nauth = "local"\nfailover = true\n',
            4,
            "a has auth local and failover on",
        ),
    ],
)
def test_a_bad_auth_or_failover_is_refused_naming_the_line(
    solo: Env, text: str, line: int, what: str
) -> None:
    bad = _write(zv := solo, '[sessions.ok]\nconnector = "sim"\n\n' + text)
    for command in (["plan", "-f", bad], ["apply", "-f", bad, "--yes"]):
        proc = zv.cli(*command, check=False)
        assert proc.returncode == 65, proc.stderr
        assert f"line {line + 3}" in proc.stderr and what in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    assert zv.json("list") == []
