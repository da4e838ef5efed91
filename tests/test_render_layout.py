"""The config's kept layout (supctl/layout.py): a render by the layout is jinja's text
byte for byte, and jinja runs only when the template or a header value changed."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecosystem.paths import StatePaths
from ecosystem.supctl import render
from tests.test_render import names, path_parts


def _render(paths: StatePaths, sessions: dict[str, int], cache: Path | None, **kw: object) -> str:
    specs = render.program_specs(paths, sessions.items(), python="/usr/bin/python3")
    return render.render(
        paths,
        username="zapvisor",
        password=str(kw.pop("password", "p" * 48)),
        programs=specs,
        max_sessions=500,  # minfds follows it: a header value
        cache=cache,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def jinja_runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many programs each jinja render was given, in order."""
    runs: list[int] = []
    real = render._jinja

    def counted(values: object, programs: list[object]) -> str:
        runs.append(len(programs))
        return real(values, programs)  # type: ignore[arg-type]

    monkeypatch.setattr(render, "_jinja", counted)
    return runs


@pytest.fixture
def home() -> Iterator[StatePaths]:
    base = Path(tempfile.mkdtemp(prefix="zv-layout-"))
    yield StatePaths(base / "home")
    shutil.rmtree(base)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sessions=st.lists(st.dictionaries(names, st.integers(1024, 32767), max_size=8), max_size=3),
    parts=st.lists(path_parts | st.just("100%"), min_size=1, max_size=3),
    monitor=st.booleans(),
    rpcext=st.booleans(),
    fork=st.booleans(),
)
def test_a_render_by_the_layout_is_jinjas_text(
    sessions: list[dict[str, int]], parts: list[str], monitor: bool, rpcext: bool, fork: bool
) -> None:
    """Homes with spaces, `%`, unicode; with and without the monitor and the RPC
    extension; one layout serving several program sets in turn."""
    base = Path(tempfile.mkdtemp(prefix="zv-layout-"))
    try:
        paths = StatePaths(base.joinpath(*parts))
        cache = base / "layout.json"
        extra = {
            "monitor": render.monitor_spec(paths, "/usr/bin/python3") if monitor else None,
            "rpcext": rpcext,
            "fork_runners": fork,
        }
        for programs in [{}, *sessions, {"a": 1024, "b-2": 1025, "c_3": 1026}]:
            by_layout = _render(paths, programs, cache, **extra)
            assert by_layout == _render(paths, programs, None, **extra)
        assert cache.exists()
    finally:
        shutil.rmtree(base)


def test_jinja_runs_only_when_the_header_or_template_changes(
    home: StatePaths, jinja_runs: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = home.home / "render-layout.json"
    first = _render(home, {"a": 2001}, cache)
    learned = len(jinja_runs)
    assert learned >= 3, "the first render learns the layout with jinja"
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o600, "it holds the password"
    many = {f"s{i}": 2000 + i for i in range(200)}
    assert _render(home, many, cache) == _render(home, many, None)
    assert _render(home, {"a": 2001}, cache) == first
    assert len(jinja_runs) == learned + 1, "only the comparison render ran jinja"

    _render(home, {"a": 2001}, cache, password="q" * 48)  # a header value changed
    assert len(jinja_runs) > learned + 1
    relearned = len(jinja_runs)
    text = render._template_text().replace(
        "stopwaitsecs=10\nstopasgroup", "stopwaitsecs=20\nstopasgroup"
    )
    monkeypatch.setattr(render, "_template_text", lambda: text)
    changed = _render(home, {"a": 2001}, cache, password="q" * 48)
    assert len(jinja_runs) > relearned, "an edited template is learned again"
    assert "stopwaitsecs=20" in changed


def test_a_template_the_layout_cannot_reproduce_stays_with_jinja(
    home: StatePaths, jinja_runs: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A field shown through another filter: every render is jinja's."""
    text = render._template_text().replace(
        "[program:{{ p.program }}]", "[program:{{ p.program | upper }}]"
    )
    monkeypatch.setattr(render, "_template_text", lambda: text)
    cache = home.home / "render-layout.json"
    for _ in range(2):
        out = _render(home, {"a": 2001}, cache)
        assert "[program:WA-A]" in out
    assert not cache.exists()
    assert jinja_runs[-1] == 1, "the last render was jinja's own"


@pytest.mark.parametrize("content", ["", "{not json", '{"key": 1}', '{"key": "x", "head": 1}'])
def test_a_corrupt_layout_file_is_learned_again(home: StatePaths, content: str) -> None:
    cache = home.home / "render-layout.json"
    home.home.mkdir(parents=True)
    cache.write_text(content)
    assert _render(home, {"a": 2001}, cache) == _render(home, {"a": 2001}, None)
    assert cache.read_text() != content
