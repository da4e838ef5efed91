"""supervisord's config: rendered configs always parse, and a bad one is never written."""

from __future__ import annotations

import configparser
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecosystem.errors import SupervisorError
from ecosystem.paths import StatePaths
from ecosystem.supctl import render, shapes
from ecosystem.supctl.apply import render_for, write_config
from tests.conftest import Env

names = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,47}", fullmatch=True)
# Paths an operator could choose: any printable text without what supervisord
# mangles ('%', ' ;', ' #', edge spaces; Settings refuses those with a message).
path_parts = st.text(
    alphabet=st.characters(codec="utf-8", min_codepoint=32, exclude_characters="/%\x7f"),
    min_size=1,
    max_size=12,
).filter(lambda s: s.strip() == s and " ;" not in s and " #" not in s and s not in (".", ".."))


def _sections(text: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";", "#"), strict=False)
    parser.read_string(text)
    return parser


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sessions=st.dictionaries(names, st.integers(1024, 65535), max_size=12),
    parts=st.lists(path_parts, min_size=1, max_size=3),
)
def test_rendered_configs_always_parse(sessions: dict[str, int], parts: list[str]) -> None:
    base = Path(tempfile.mkdtemp(prefix="zv-render-"))
    paths = StatePaths(base.joinpath(*parts))
    paths.logs.mkdir(parents=True)  # supervisor's parser checks log folders exist
    specs = render.program_specs(paths, sessions.items(), python="/usr/bin/python3")
    text = render.render(
        paths,
        username="zapvisor",
        password="p" * 48,
        programs=specs,
        max_sessions=max(10, len(sessions)),
    )
    programs = render.check(text)
    shutil.rmtree(base)
    assert sorted(programs) == sorted(f"wa-{n}" for n in sessions)
    parsed = _sections(text)
    assert not [s for s in parsed.sections() if s.startswith("group:")]
    assert not parsed.has_option("supervisord", "environment")
    for name, port in sessions.items():
        section = f"program:wa-{name}"
        assert parsed.get(section, "autostart") == "false"
        assert f"--port {port}" in parsed.get(section, "command")
        assert f"--session {name}" in parsed.get(section, "command")


def _config(paths: StatePaths, names: list[str], password: str = "p" * 48) -> str:
    specs = render.program_specs(paths, [(n, 3001 + i) for i, n in enumerate(names)])
    return render.render(
        paths, username="zapvisor", password=password, programs=specs, max_sessions=10
    )


def _record_parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The texts supervisor's parser is given from now on, in order."""
    parsed: list[str] = []
    real_parse = render._parse

    def parse(text: str) -> list[str]:
        parsed.append(text)
        return real_parse(text)

    monkeypatch.setattr(render, "_parse", parse)
    return parsed


def test_the_check_parses_only_what_the_live_file_does_not_hold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 200 sessions a create would parse 200 programs; the live file passed the
    check when it was written, so only new or changed program sections are parsed."""
    paths = StatePaths(tmp_path)
    paths.logs.mkdir(parents=True)
    live = _config(paths, ["a", "b"])
    parsed = _record_parses(monkeypatch)

    grown = _config(paths, ["a", "b", "c"])
    # wa-c is wa-a with another name and port: a shape the live file's check passed
    assert render.check(grown, checked=live) == ["wa-a", "wa-b", "wa-c"]
    assert parsed == []

    # a section of another shape (here a setting only it has) is parsed, with the header
    odd = grown.replace("[program:wa-c]\ncommand=", "[program:wa-c]\npriority=7\ncommand=")
    assert odd != grown
    assert render.check(odd, checked=live) == ["wa-a", "wa-b", "wa-c"]
    assert len(parsed) == 1 and "[program:wa-c]" in parsed[0] and "priority=7" in parsed[0]
    assert "[program:wa-a]" not in parsed[0] and "[unix_http_server]" in parsed[0]

    parsed.clear()  # a program removed: nothing new to parse
    assert render.check(_config(paths, ["a"]), checked=live) == ["wa-a"] and parsed == []

    # a new section supervisord would refuse is caught as ever
    broken = grown.replace("[program:wa-c]\ncommand=", "[program:wa-c]\nnumprocs=x\ncommand=")
    assert broken != grown
    with pytest.raises(render.RenderError, match="supervisord would reject"):
        render.check(broken, checked=live)

    parsed.clear()  # anything else changed (here the socket's password): all of it again
    other = _config(paths, ["a", "b", "c"], password="q" * 48)
    assert render.check(other, checked=live) == ["wa-a", "wa-b", "wa-c"]
    assert len(parsed) == 1 and parsed[0] == other


@pytest.mark.parametrize("value", ["a\nb", "a ;b", "a #b", " lead", "x\x00"])
def test_values_supervisord_would_mangle_are_refused(value: str) -> None:
    with pytest.raises(render.RenderError, match="supervisord"):
        render.sv(value)


def test_percent_is_escaped() -> None:
    assert render.sv("50%") == "50%%"


def test_a_config_supervisor_rejects_is_never_written(
    zv: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings_ = zv.settings()
    paths = StatePaths(settings_.home)
    paths.ensure()
    good, _ = render_for(paths, settings_, [])
    write_config(paths, settings_, good)
    before = paths.conf.read_text()
    broken = render._template_text().replace("startsecs=1", "startsecs=soon")
    monkeypatch.setattr(render, "_template_text", lambda: broken)
    from ecosystem.models import Session

    session = Session(name="alpha", host="h", port=zv.base_port)
    with pytest.raises(SupervisorError, match="supervisord would reject"):
        render_for(paths, settings_, [session])
    assert paths.conf.read_text() == before


def test_config_and_secrets_are_private(zv: Env) -> None:
    zv.cli("create", "alpha", "--connector", "sim", "--stopped")
    for path in (
        zv.home / "supervisord.conf",
        zv.home / "runtime.env",
        zv.home / "secrets" / "supervisord.json",
        zv.home / "secrets" / "alpha.token",
        zv.home / "zapvisor.db",
    ):
        assert path.stat().st_mode & 0o777 == 0o600, path
    for folder in (zv.home, zv.home / "secrets"):
        assert folder.stat().st_mode & 0o777 == 0o700, folder
    sock = zv.home / "supervisor.sock"
    assert sock.stat().st_mode & 0o777 == 0o700


def test_what_passed_is_remembered_across_configs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The digests of what passed (shapes.py, kept in the state dir by apply): the
    first create after every session was deleted parses nothing new either, and a
    changed header or template is parsed again."""
    paths = StatePaths(tmp_path)
    paths.logs.mkdir(parents=True)
    parsed = _record_parses(monkeypatch)

    known: set[str] = set()
    assert render.check(_config(paths, ["first"]), known=known) == ["wa-first"]
    assert len(parsed) == 1 and len(known) == 2  # the header and one program's shape
    shapes.save(paths, [], known)
    assert (tmp_path / "checked-shapes").stat().st_mode & 0o777 == 0o600

    parsed.clear()  # nothing live (all deleted), a new name and port: nothing to parse
    again = set(shapes.load(paths))
    assert again == known
    assert render.check(_config(paths, ["other-1"]), known=again) == ["wa-other-1"]
    assert parsed == []

    parsed.clear()  # another header (the socket's password): all of it is parsed
    other = _config(paths, ["other-1"], password="q" * 48)
    assert render.check(other, known=again) == ["wa-other-1"] and parsed == [other]

    # a broken section is caught even when its neighbours passed
    broken = _config(paths, ["a", "b"]).replace(
        "[program:wa-b]\ncommand=", "[program:wa-b]\nnumprocs=x\ncommand="
    )
    with pytest.raises(render.RenderError, match="supervisord would reject"):
        render.check(broken, known=again)
