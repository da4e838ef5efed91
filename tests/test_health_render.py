"""The monitor's entry in supervisord's config: present by default, independent of the
sessions, and it takes over restarts from supervisord."""

from __future__ import annotations

import configparser
from pathlib import Path

from ecosystem.models import Session
from ecosystem.paths import StatePaths
from ecosystem.settings import make_settings
from ecosystem.supctl.apply import render_for
from ecosystem.supctl.render import MONITOR_PROGRAM


def parse(text: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";", "#"), strict=False)
    parser.read_string(text)
    return parser


def sessions(*names: str) -> list[Session]:
    return [Session(name=n, host="h", port=3001 + i) for i, n in enumerate(names)]


def test_monitor_entry_and_runner_restarts(tmp_path: Path) -> None:
    paths = StatePaths(tmp_path / "home")
    paths.ensure()
    settings = make_settings(home=paths.home)
    text, programs = render_for(paths, settings, sessions("a", "b"))
    assert MONITOR_PROGRAM in programs and {"wa-a", "wa-b"} <= set(programs)
    conf = parse(text)
    listener = conf[f"eventlistener:{MONITOR_PROGRAM}"]
    # no TICK_5: the monitor keeps its own clock, and supervisord sleeps without one
    assert set(listener["events"].split(",")) == {"PROCESS_STATE"}
    assert listener["autostart"] == "true" and listener["autorestart"] == "true"
    assert listener["stdout_logfile"] == "NONE", "stdout is the listener protocol"
    assert listener["command"].endswith(f"-m ecosystem.health --home {paths.home}")
    for program in ("wa-a", "wa-b"):
        # the monitor restarts crashed runners (with backoff), not supervisord
        assert conf[f"program:{program}"]["autorestart"] == "false"
        assert conf[f"program:{program}"]["startretries"] == "0"

    # its entry is the same whatever the sessions: a session change never restarts it
    other, _ = render_for(paths, settings, sessions("c", "d", "e"))
    assert dict(parse(other)[f"eventlistener:{MONITOR_PROGRAM}"]) == dict(listener)


def test_without_the_monitor_supervisord_restarts_runners(tmp_path: Path) -> None:
    paths = StatePaths(tmp_path / "home")
    paths.ensure()
    text, programs = render_for(paths, make_settings(home=paths.home, monitor=False), sessions("a"))
    assert MONITOR_PROGRAM not in programs
    conf = parse(text)
    assert not any(s.startswith("eventlistener:") for s in conf.sections())
    assert conf["program:wa-a"]["autorestart"] == "true"
    assert conf["program:wa-a"]["startretries"] == "5"
