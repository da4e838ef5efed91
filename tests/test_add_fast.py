"""A create adds its program without supervisord re-reading the whole config
(``zapvisor.addPrograms``, ecosystem/supctl/rpcext.py), on a real supervisord: the
program it adds is the one a reread would make, so a later reread finds nothing
changed and restarts nothing; whenever supervisord may run something other than the
live file says, or has no such method, the create rereads as before."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ecosystem.models import NewSession
from ecosystem.orchestrator import Orchestrator
from ecosystem.paths import StatePaths
from ecosystem.states import DesiredState
from ecosystem.supctl import apply as applier
from ecosystem.supctl import daemon, render, statefiles
from ecosystem.supctl.rpc import Supervisor
from tests.conftest import Env, wait_for

pytestmark = pytest.mark.e2e


class Recording(Supervisor):
    """The real client, noting which methods it called."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[str] = []

    def call(self, method: str, *args: Any, namespace: str = "supervisor") -> Any:
        self.calls.append(f"{namespace}.{method}")
        return super().call(method, *args, namespace=namespace)


@pytest.fixture
def orch(zv: Env) -> Iterator[Orchestrator]:
    o = Orchestrator(zv.settings(), actor="test")
    plain = daemon.client(o.paths)
    o._sup = Recording(plain.socket_path, *plain.credentials)
    try:
        yield o
    finally:
        o.close()


def _calls(o: Orchestrator) -> list[str]:
    sup = o.sup
    assert isinstance(sup, Recording)
    return sup.calls


def _pids(o: Orchestrator) -> dict[str, int | None]:
    return {name: info.pid for name, info in o.sup.all_process_info().items()}


def _expected_config(o: Orchestrator) -> str:
    sessions = o.store.list_sessions(o.host_id)
    return applier.render_for(o.paths, o.settings, sessions)[0]


def test_a_create_adds_its_program_and_a_later_reread_restarts_nothing(
    orch: Orchestrator,
) -> None:
    orch.create(NewSession(name="alpha", connector="sim"))  # boots supervisord
    _calls(orch).clear()
    orch.create(NewSession(name="beta", connector="sim"))
    assert "zapvisor.addPrograms" in _calls(orch)
    assert "supervisor.reloadConfig" not in _calls(orch)
    wait_for(lambda: orch.show("beta").process_state == "RUNNING")
    assert orch.paths.conf.read_text("utf-8") == _expected_config(orch)
    pids = _pids(orch)
    assert pids["wa-alpha"] and pids["wa-beta"]

    # the entry added is the one a reread makes: a reread finds nothing to do
    assert orch.sup.reload_config() == ([], [], [])
    orch.create(NewSession(name="gamma", connector="sim", desired_state=DesiredState.STOPPED))
    _calls(orch).clear()
    orch.delete("gamma")  # a removal rereads
    assert "supervisor.reloadConfig" in _calls(orch)
    after = _pids(orch)
    assert "wa-gamma" not in after
    assert after["wa-alpha"] == pids["wa-alpha"] and after["wa-beta"] == pids["wa-beta"]
    assert orch.apply().changed == []


def _rereads(orch: Orchestrator, name: str) -> None:
    _calls(orch).clear()
    orch.create(NewSession(name=name, connector="sim", desired_state=DesiredState.STOPPED))
    assert "supervisor.reloadConfig" in _calls(orch)
    assert orch.sup.process_info(f"wa-{name}") is not None


def test_a_create_rereads_when_supervisord_may_run_something_else(
    orch: Orchestrator,
) -> None:
    orch.create(NewSession(name="alpha", connector="sim"))

    # a program the live file holds, supervisord lacks: the reread adds it back
    orch.sup.stop("wa-alpha")
    orch.sup.remove_group("wa-alpha")
    _rereads(orch, "beta")
    back = wait_for(lambda: (i := orch.sup.process_info("wa-alpha")) and i.state == "RUNNING" and i)

    # a changed entry written, not reread yet (an apply killed in between): supervisord
    # runs alpha's old entry, the file holds the new one and the same programs
    live = orch.paths.conf.read_text("utf-8")
    head, alpha, rest = live.partition("[program:wa-alpha]")
    orch.paths.conf.write_text(head + alpha + rest.replace("waitsecs=10", "waitsecs=11", 1))
    assert orch.sup.reload_config()[1] == ["wa-alpha"]
    orch.sup.stop("wa-alpha")
    orch.sup.remove_group("wa-alpha")
    orch.sup.add_group("wa-alpha")
    orch.sup.start("wa-alpha")
    orch.paths.conf.write_text(live)
    marker = orch.paths.home / "reread-pending"
    marker.touch()
    _rereads(orch, "gamma")
    assert not marker.exists()
    assert statefiles.deferred(orch.paths) == {"wa-alpha"}  # the reread saw it
    orch.restart("alpha")  # its own restart swaps its entry
    assert statefiles.deferred(orch.paths) == set()
    back = wait_for(lambda: (i := orch.sup.process_info("wa-alpha")) and i.state == "RUNNING" and i)
    assert orch.sup.reload_config() == ([], [], [])

    # a running program left on its old entry (the reread finds it is not, any more)
    statefiles.save_deferred(orch.paths, ["wa-alpha"])
    _rereads(orch, "delta")
    assert statefiles.deferred(orch.paths) == set()
    assert _pids(orch)["wa-alpha"] == back.pid

    # now everything matches again: the next create takes the short way
    _calls(orch).clear()
    orch.create(NewSession(name="epsilon", connector="sim", desired_state=DesiredState.STOPPED))
    assert "supervisor.reloadConfig" not in _calls(orch)


OLDER_RPCEXT = """
import json

class Older:
    def __init__(self, supervisord):
        self.supervisord = supervisord

    def processes(self):
        return json.dumps({"format": 0})

def make_interface(supervisord, **config):
    return Older(supervisord)
"""


def test_a_supervisord_without_the_method_rereads(
    orch: Orchestrator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Started by an older install, whose rpcext has zapvisor.processes only (here: a
    package `ecosystem` holding just that, first on supervisord's PYTHONPATH; its
    programs stay stopped, as their runners would import it too)."""
    older = tmp_path / "older"
    (older / "ecosystem" / "supctl").mkdir(parents=True)
    (older / "ecosystem" / "__init__.py").write_text("")
    (older / "ecosystem" / "supctl" / "__init__.py").write_text("")
    (older / "ecosystem" / "supctl" / "rpcext.py").write_text(OLDER_RPCEXT)
    monkeypatch.setenv("PYTHONPATH", str(older))
    orch.create(NewSession(name="alpha", connector="sim", desired_state=DesiredState.STOPPED))
    monkeypatch.delenv("PYTHONPATH")
    methods = orch.sup.call("listMethods", namespace="system")
    assert "zapvisor.processes" in methods and "zapvisor.addPrograms" not in methods

    _calls(orch).clear()
    orch.create(NewSession(name="beta", connector="sim", desired_state=DesiredState.STOPPED))
    assert "zapvisor.addPrograms" in _calls(orch)  # asked, refused: UNKNOWN_METHOD
    assert "supervisor.reloadConfig" in _calls(orch)
    assert set(_pids(orch)) == {"wa-alpha", "wa-beta", render.MONITOR_PROGRAM}
    assert orch.sup.reload_config() == ([], [], [])


SECTION = """
[program:{name}]
command=/bin/sleep 600
directory=%(here)s
environment=FROM_ENV="%(ENV_HOME)s",NAME="%(program_name)s"
autostart=false
stdout_logfile=%(here)s/logs/{name}.out
stderr_logfile=NONE
"""


def test_added_programs_are_parsed_as_a_reread_parses_them(
    orch: Orchestrator,
) -> None:
    """Expansions (%(here)s, %(ENV_x)s, %(program_name)s) come out as a reread makes
    them; a batch with one bad section adds nothing; a name taken is refused."""
    orch.create(NewSession(name="alpha", connector="sim", desired_state=DesiredState.STOPPED))
    sup, paths = orch.sup, StatePaths(orch.settings.home)
    live = paths.conf.read_text("utf-8")

    bad = SECTION.format(name="x-two") + "stopasgroup=true\nkillasgroup=false\n"
    assert sup.add_programs(SECTION.format(name="x-one") + bad) is None
    assert sup.add_programs("[supervisord]\nidentifier=other\n") is None
    assert sup.add_programs(SECTION.format(name="wa-alpha")) is None
    assert sup.process_info("x-one") is None and sup.process_info("x-two") is None

    added = SECTION.format(name="x-one") + SECTION.format(name="x-two")
    assert sup.add_programs(added) == ["x-one", "x-two"]
    paths.conf.write_text(live + added)
    assert sup.reload_config() == ([], [], [])
    sup.start("x-one")
    # RUNNING (startsecs=1): exec'd, not the fork before its exec
    info = wait_for(lambda: (i := sup.process_info("x-one")) and i.state == "RUNNING" and i)
    environ = Path(f"/proc/{info.pid}/environ").read_bytes().split(b"\0")
    assert b"NAME=x-one" in environ and b"FROM_ENV=" + str(Path.home()).encode() in environ
    assert Path(f"/proc/{info.pid}/cwd").resolve() == paths.home.resolve()
    sup.stop("x-one")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda live, new: new, (["wa-b"], "[program:wa-b]")),
        (lambda live, new: live, None),  # nothing added
        (lambda live, new: new.replace("loglevel=info", "loglevel=warn"), None),
        (lambda live, new: new.replace("wa-a.out", "wa-a.log"), None),  # one changed
        (lambda live, new: new.replace("[program:wa-a]", "[program:wa-c]"), None),  # removed
        (lambda live, new: new.replace("[program:wa-b]", "[eventlistener:wa-b]"), None),
    ],
)
def test_only_added_program_sections_are_added(
    change: Callable[[str, str], str], expected: tuple[list[str], str] | None
) -> None:
    live = "[supervisord]\nloglevel=info\n\n[program:wa-a]\ncommand=x\nstdout_logfile=wa-a.out\n"
    new = live + "\n[program:wa-b]\ncommand=y\n"
    found = render.added_programs(live, change(live, new))
    if expected is None:
        assert found is None
    else:
        assert found is not None
        assert found[1] == expected[0] and found[0].startswith(expected[1])
