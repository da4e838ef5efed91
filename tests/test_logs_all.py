"""`zapvisor logs --all`: every session's lines in one stream, in time order, each with
its session; real supervisord, real sim runners, the CLI as separate processes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ecosystem import logstream
from ecosystem.logstream import Source, Stream
from tests.conftest import Env, wait_for

NAMES = ("alpha", "beta", "gamma-3")


def _line(ts: str, msg: str) -> str:
    return json.dumps({"ts": ts, "level": "info", "session": "x", "logger": "t", "msg": msg})


def test_stream_puts_late_lines_in_time_order(tmp_path: Path) -> None:
    """A line that reaches its file after a later line of another file still comes out
    first, as long as it arrives within the hold-back window."""
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_text("")
    b.write_text("")
    now = [1_800_000_000.0]
    stream = Stream(logstream.matcher(None), hold=0.4, clock=lambda: now[0])
    stream.add([Source("a", a, False), Source("b", b, False)])
    ts = logstream._iso
    with a.open("a") as fh:
        fh.write(_line(ts(now[0] - 0.1), "second") + "\n")
    assert stream.read() == []  # held back: an earlier line may still come
    with b.open("a") as fh:
        fh.write(_line(ts(now[0] - 0.2), "first") + "\nnot json, from native code\n")
    now[0] += 0.5
    got = stream.read()
    assert [(e.session, logstream.stamp(e.text) or "-") for e in got] == [
        ("b", ts(now[0] - 0.7)),
        ("b", "-"),
        ("a", ts(now[0] - 0.6)),
    ]
    assert got[1].ts == got[0].ts  # a line without ts takes its file's last one


def test_grep_and_bad_input(zv: Env) -> None:
    zv.json("create", "solo", "--connector", "sim", "--stopped")
    bad = zv.cli("logs", "--all", "--grep", "([", check=False)
    assert bad.returncode == 65 and "--grep" in bad.stderr and "regular expression" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    none = zv.cli("logs", check=False)
    assert none.returncode == 65 and "--all" in none.stderr
    both = zv.cli("logs", "solo", "--all", check=False)
    assert both.returncode == 65 and "drop 'solo'" in both.stderr
    host = zv.cli("logs", "--all", "--host", "nowhere", check=False)
    assert host.returncode == 66 and "nowhere" in host.stderr  # unknown host, as elsewhere


def _reader(proc: subprocess.Popen[str], into: list[str]) -> threading.Thread:
    def run() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            into.append(line)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_follow_sees_three_sessions_in_time_order(zv: Env) -> None:
    for name in NAMES:
        zv.json("create", name, "--connector", "sim")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli.main", "logs", "--all", "-f", "--json", "-n", "1"],
        env=zv.vars,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        _reader(proc, lines)
        # the stream follows the files once it printed its backlog (a line of each)
        wait_for(lambda: len(lines) >= len(NAMES), timeout=30)
        for name in reversed(NAMES):
            zv.json("sim-scan", name)

        def paired() -> set[str]:
            got = [json.loads(x) for x in list(lines)]
            return {e["session"] for e in got if '"msg": "paired"' in e["line"]}

        wait_for(lambda: paired() == set(NAMES), timeout=30)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    entries = [json.loads(x) for x in lines]
    assert {e["session"] for e in entries} == set(NAMES)
    stamps = [e["ts"] for e in entries if e["ts"]]
    assert stamps == sorted(stamps), "lines are not in time order"
    for e in entries:
        assert e["stream"] in ("stdout", "stderr") and e["host"]
        if e["stream"] == "stdout" and e["line"].startswith("{"):
            assert json.loads(e["line"])["session"] == e["session"]
    # the three scans were made gamma-3, beta, alpha: their "paired" lines say so
    order = [e["session"] for e in entries if '"msg": "paired"' in e["line"]]
    assert order == list(reversed(NAMES))


def test_tail_prefixes_each_line_with_its_session(zv: Env) -> None:
    for name in NAMES[:2]:
        zv.json("create", name, "--connector", "sim")
    zv.json("sim-scan", "alpha")
    wait_for(lambda: "paired" in zv.cli("logs", "--all").stdout)
    out = zv.cli("logs", "--all", "-n", "50").stdout.splitlines()
    assert {line.split(" | ", 1)[0].strip() for line in out} == {"alpha", "beta"}
    assert all(line.split(" | ", 1)[0] in ("alpha", "beta ") for line in out)  # padded
    only = zv.cli("logs", "--all", "--grep", "paired").stdout.splitlines()
    assert only and all(line.startswith("alpha | ") and "paired" in line for line in only)


@pytest.mark.parametrize("flag", ["--json", "--host"])
def test_single_session_logs_refuse_all_only_flags(zv: Env, flag: str) -> None:
    zv.json("create", "solo", "--connector", "sim", "--stopped")
    args = [flag] if flag == "--json" else [flag, "x"]
    proc = zv.cli("logs", "solo", *args, check=False)
    assert proc.returncode == 65 and "--all" in proc.stderr


def test_app_all_logs_view_follows_three_sessions(zv: Env) -> None:
    """`L` on the sessions screen: every session's lines after its name; a scan made
    while it is open shows up; `/` keeps only the matching lines; escape goes back."""
    import asyncio

    from textual.widgets import Log

    from tests.tui_helpers import in_thread, screen_as, until
    from tui.app import make_app
    from tui.screens.all_logs import AllLogsScreen
    from tui.screens.sessions import SessionsScreen

    for name in NAMES:
        zv.json("create", name, "--connector", "sim")
    app = make_app(zv.settings(), refresh_seconds=0.3, blink=False)

    def shown() -> list[str]:
        return [str(line) for line in app.screen.query_one("#stream", Log).lines]

    def labels() -> set[str]:
        return {line.split(" | ", 1)[0].strip() for line in shown() if " | " in line}

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            home = await until(pilot, lambda: isinstance(app.screen, SessionsScreen) and app.screen)
            await pilot.press("L")
            screen_as(app, AllLogsScreen)
            await until(pilot, lambda: labels() == set(NAMES), what="a line of each session")
            await in_thread(lambda: zv.cli("sim-scan", "beta"))
            await until(
                pilot,
                lambda: any(ln.startswith("beta ") and "paired" in ln for ln in shown()),
                what="beta's pairing line",
            )
            await pilot.press("slash", *"paired", "enter")
            await until(
                pilot,
                lambda: shown() and all("paired" in ln for ln in shown()),
                what="only the matching lines",
            )
            assert labels() == {"beta"}
            await pilot.press("escape")
            assert app.screen is home

    asyncio.run(scenario())
