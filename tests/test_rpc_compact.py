"""`zapvisor.processes`, the compact process table served by zapvisor's own namespace in
supervisord (ecosystem/supctl/rpcext.py), on a real supervisord: the same facts as
getAllProcessInfo for running, stopped (never started or stopped), exited and fatal
programs; the fallback to
getAllProcessInfo when supervisord was started with a config that predates it (an
upgrade re-renders the config without restarting anything, and the method arrives with
supervisord's next start); `list` says the same either way."""

from __future__ import annotations

import dataclasses
import math
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ecosystem.orchestrator import Orchestrator
from ecosystem.paths import StatePaths
from ecosystem.supctl import apply as applier
from ecosystem.supctl import daemon, render
from ecosystem.supctl.rpc import Fault, ProcessInfo, Supervisor
from tests.conftest import Env, wait_for
from tui.cli import output

pytestmark = pytest.mark.e2e

SECTION = "[rpcinterface:zapvisor]"
_BLOCK = re.compile(
    r"\n; zapvisor\.processes\(\).*?:make_interface\n(?:;[^\n]*\nfork_runners = true\n)?",
    re.DOTALL,
)


def _python(code: str) -> str:
    return shlex.join([sys.executable, "-c", code])


PROGRAMS = {
    "run": _python("import time; time.sleep(600)"),
    "never": _python("import time; time.sleep(600)"),
    "stopped": _python("import time; time.sleep(600)"),
    "exited": _python("import sys, time; time.sleep(1.5); sys.exit(3)"),
    "quick": _python("raise SystemExit(2)"),
}


def _config(paths: StatePaths, rpcext: bool = True) -> str:
    creds = daemon.credentials(paths)
    specs = [
        render.ProgramSpec(
            name=name,
            port=20000 + i,
            command=command,
            stdout_log=paths.stdout_log(name),
            stderr_log=paths.stderr_log(name),
        )
        for i, (name, command) in enumerate(PROGRAMS.items())
    ]
    text = render.render(
        paths,
        username=creds.username,
        password=creds.password,
        programs=specs,
        max_sessions=10,
        rpcext=rpcext,
    )
    # no restarts, so each program stays in the state it reached
    return text.replace("autorestart=true", "autorestart=false").replace(
        "startretries=5", "startretries=0"
    )


def _predating(text: str) -> str:
    """The config an older zapvisor rendered: no [rpcinterface:zapvisor] (nor its
    comment), as this one renders it for a supervisord that does not serve the table."""
    old, count = _BLOCK.subn("", text)
    assert count == 1 and SECTION not in old
    return old


def _raw(sup: Supervisor) -> dict[str, ProcessInfo]:
    """getAllProcessInfo itself."""
    return {i["name"]: ProcessInfo.from_rpc(i) for i in sup.call("getAllProcessInfo")}


def _same_facts(a: dict[str, ProcessInfo], b: dict[str, ProcessInfo]) -> None:
    assert sorted(a) == sorted(b)
    for name in a:
        assert abs(a[name].now - b[name].now) <= 1
        # the compact table leaves description out
        x = dataclasses.replace(a[name], now=0, description="")
        assert x == dataclasses.replace(b[name], now=0, description="")


@pytest.fixture
def started(make_env: Callable[..., Env]) -> Iterator[tuple[StatePaths, Supervisor]]:
    """A state dir and a client for the supervisord a test starts there."""
    paths = StatePaths(make_env().home)
    paths.ensure()
    sup = daemon.client(paths)
    try:
        yield paths, sup
    finally:
        daemon.shutdown(paths, sup)


def _settle(sup: Supervisor) -> dict[str, ProcessInfo]:
    """Start the programs meant to run and wait until each reached its state."""
    for name in ("run", "stopped", "exited", "quick"):
        sup.start(f"wa-{name}")
    sup.stop("wa-stopped")
    want = {
        "wa-run": "RUNNING",
        "wa-never": "STOPPED",
        "wa-stopped": "STOPPED",
        "wa-exited": "EXITED",
        "wa-quick": "FATAL",
    }
    return wait_for(
        lambda: (i := _raw(sup)) and {n: p.state for n, p in i.items()} == want and i,
        timeout=30,
    )


def test_the_compact_table_says_what_getallprocessinfo_says(
    started: tuple[StatePaths, Supervisor],
) -> None:
    paths, sup = started
    text = _config(paths)
    assert "wa-run" in render.check(text)  # supervisor's own parser imports the factory
    paths.conf.write_text(text)
    daemon.start(paths, sup)
    raw = _settle(sup)

    table = sup.all_process_info()
    assert sup.compact is True
    _same_facts(table, raw)
    # what each state leaves behind is really there (not zeros on both sides)
    assert table["wa-run"].pid and table["wa-run"].uptime is not None
    assert table["wa-never"].pid is None and table["wa-never"].start == 0
    assert table["wa-stopped"].start and table["wa-stopped"].stop >= table["wa-stopped"].start
    assert table["wa-exited"].exitstatus == 3
    assert "too quickly" in table["wa-quick"].spawnerr


def test_a_supervisord_started_by_an_older_install_is_read_with_getallprocessinfo(
    started: tuple[StatePaths, Supervisor], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its python is the older install's, which has no ecosystem.supctl.rpcext (here: a
    package `ecosystem` without it, first on its PYTHONPATH). A config with the section
    would fail its every reread, so apply leaves the section out until it restarts."""
    paths, sup = started
    older = tmp_path / "older"
    (older / "ecosystem").mkdir(parents=True)
    (older / "ecosystem" / "__init__.py").write_text("")
    new = _config(paths)
    old = _config(paths, rpcext=False)
    assert _predating(new) == old
    paths.conf.write_text(old)
    monkeypatch.setenv("PYTHONPATH", str(older))
    daemon.start(paths, sup)
    monkeypatch.delenv("PYTHONPATH")
    raw = _settle(sup)
    sup.compact_retry = 0  # ask for zapvisor.processes on every call
    _same_facts(sup.all_process_info(), raw)
    assert sup.compact is False

    supervisord = sup.pid()
    assert applier.wants_rpcext(True, sup) is False
    assert sup.reload_config() == ([], [], [])
    paths.conf.write_text(new)  # what apply does not write, and why
    with pytest.raises(Fault, match=r"CANT_REREAD.*rpcext"):
        sup.reload_config()
    paths.conf.write_text(old)
    after = sup.all_process_info()
    assert sup.compact is False and sup.pid() == supervisord
    assert after["wa-run"].pid == raw["wa-run"].pid and after["wa-run"].state == "RUNNING"

    # started again by this install: the table is there, and rereads keep working
    daemon.shutdown(paths, sup)
    assert applier.wants_rpcext(False, sup) is True
    paths.conf.write_text(new)
    daemon.start(paths, sup)
    assert applier.wants_rpcext(True, sup) is True
    assert sup.reload_config() == ([], [], [])
    assert "wa-run" in sup.all_process_info()
    assert sup.compact is True


def test_apply_keeps_an_older_supervisord_running_until_its_next_start(zv: Env) -> None:
    """An upgrade: the supervisord (and runner) an older zapvisor started keep running
    through `start`/`list`, which read getAllProcessInfo from it and keep its config
    without the section; once supervisord starts again the section is written and the
    compact table served."""
    zv.cli("create", "alpha", "--connector", "sim")
    paths = StatePaths(zv.home)
    zv.cli("shutdown")
    old = _predating(paths.conf.read_text("utf-8"))
    paths.conf.write_text(old)
    sup = daemon.client(paths)
    daemon.start(paths, sup)
    supervisord = sup.pid()
    zv.cli("start", "alpha")
    wait_for(lambda: zv.json("list")[0]["process_state"] == "RUNNING", timeout=30)
    pid = zv.json("show", "alpha")["pid"]
    assert paths.conf.read_text("utf-8") == old
    assert not sup.serves_compact()
    assert sup.pid() == supervisord and zv.json("show", "alpha")["pid"] == pid

    zv.cli("shutdown")
    assert zv.json("list")[0]["name"] == "alpha"  # any command brings supervisord up
    assert SECTION in paths.conf.read_text("utf-8")
    assert sup.serves_compact()


def test_list_says_the_same_from_either_table(zv: Env) -> None:
    """`list` (table and --json) from zapvisor.processes and from getAllProcessInfo;
    only the clock may tick between the two reads, so they are retried until both fall
    in the same second."""
    zv.cli("create", "alpha", "--connector", "sim")
    zv.cli("create", "beta", "--connector", "sim", "--stopped")
    orch = Orchestrator(zv.settings())
    try:
        wait_for(lambda: (p := orch.sup.process_info("wa-alpha")) and p.state == "RUNNING")

        def both() -> tuple[str, str] | None:
            orch.sup.compact_after = 0.0
            compact = orch.list_sessions()
            assert orch.sup.compact is True
            orch.sup.compact_after = math.inf
            fallback = orch.list_sessions()
            assert orch.sup.compact is False
            a = repr([v.to_json() for v in compact]) + output.sessions_table(compact)
            b = repr([v.to_json() for v in fallback]) + output.sessions_table(fallback)
            return None if a != b else (a, b)

        shown = wait_for(both, timeout=10, interval=0.2)
        assert "alpha" in shown[0] and "RUNNING" in shown[0]
    finally:
        orch.close()


def test_the_module_supervisord_imports_stays_small() -> None:
    """supervisord imports it (in zapvisor's venv, on every host): it brings in none of
    the rest of zapvisor (settings, pydantic, stores)."""
    code = (
        "import sys, ecosystem.supctl.rpcext; "
        "print(sorted(m for m in sys.modules if m.startswith(('ecosystem', 'pydantic'))))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert found.stdout.strip() == "['ecosystem', 'ecosystem.supctl', 'ecosystem.supctl.rpcext']"
