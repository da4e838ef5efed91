"""The live view's core, without any UI: what one refresh costs, the monitor's records, which
changes are announced, per-process figures, and following log files."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ecosystem import logfiles
from ecosystem.health.model import Alert, AlertKind, SessionHealth
from ecosystem.health.model import Severity as AlertSeverity
from ecosystem.liveview import Poller, Snapshot, notable_changes
from ecosystem.metrics import ProcessSampler, read_proc_stat
from ecosystem.models import Session
from ecosystem.orchestrator import Orchestrator
from ecosystem.paths import StatePaths
from ecosystem.settings import make_settings
from ecosystem.states import ProcessState, Status
from ecosystem.supctl import daemon
from ecosystem.supctl.rpc import ProcessInfo
from ecosystem.views import SessionView
from tests.conftest import wait_for
from tests.tui_fixed import NOW, fixed_snapshot


class CountingStore:
    """Stands in for the store to count the calls one refresh makes (no UI, no I/O)."""

    def __init__(self, sessions: list[Session]) -> None:
        self.sessions = sessions
        self.health: dict[str, SessionHealth] = {}
        self.alerts: list[Alert] = []
        self.calls: list[str] = []

    def list_sessions(self, host: str | None = None) -> list[Session]:
        self.calls.append("list_sessions")
        return self.sessions

    def list_health(self, host: str | None = None) -> dict[str, SessionHealth]:
        self.calls.append("list_health")
        return dict(self.health)

    def list_alerts(
        self, host: str | None = None, *, active: bool | None = None, limit: int = 100
    ) -> list[Alert]:
        self.calls.append("list_alerts")
        assert active is True
        return list(self.alerts)

    def describe(self) -> str:
        return "counting"


class CountingSupervisor:
    def __init__(self, infos: dict[str, ProcessInfo]) -> None:
        self.infos = infos
        self.calls: list[str] = []

    def all_process_info(self) -> dict[str, ProcessInfo]:
        self.calls.append("getAllProcessInfo")
        return dict(self.infos)


def _info(name: str, pid: int | None) -> ProcessInfo:
    state = ProcessState.RUNNING if pid else ProcessState.STOPPED
    return ProcessInfo(f"wa-{name}", state, pid, 1, 2, 0, 0, "", "")


def test_one_tick_is_two_batched_store_queries_and_one_rpc(tmp_path: Path) -> None:
    names = [f"s{i:03d}" for i in range(50)]
    store = CountingStore([Session(name=n, host="h", port=4000 + i) for i, n in enumerate(names)])
    # pids of this very process: psutil can read them; the figures are not under test
    sup = CountingSupervisor({f"wa-{n}": _info(n, os.getpid()) for n in names})
    orch = Orchestrator(make_settings(home=tmp_path, host_id="h"), store)  # type: ignore[arg-type]
    clock = [100.0]
    poller = Poller(orch, alerts_every=5.0, monotonic=lambda: clock[0])
    orch._poll_sup = sup  # type: ignore[assignment]

    snap = poller.tick()
    assert store.calls == ["list_sessions", "list_health", "list_alerts"]
    assert sup.calls == ["getAllProcessInfo"]
    assert [v.name for v in snap.views] == names
    assert snap.procs[os.getpid()].rss > 0
    assert all(v.restarts == 0 for v in snap.views) and snap.alerts == ()

    # the monitor's records reach the views; alerts are read again only after 5 s
    store.health["s001"] = SessionHealth(name="s001", restarts=3, last_restart_reason="hung")
    store.alerts.append(_alert(1, "disk 91% full"))
    store.calls.clear()
    clock[0] += 1.0
    snap = poller.tick()
    assert store.calls == ["list_sessions", "list_health"]
    assert snap.view("s001").restarts == 3  # type: ignore[union-attr]
    assert snap.alerts == ()
    clock[0] += 5.0
    snap = poller.tick()
    assert store.calls[2:] == ["list_sessions", "list_health", "list_alerts"]
    assert [a.message for a in snap.alerts or ()] == ["disk 91% full"]
    assert len(sup.calls) == 3


def _alert(id_: int, message: str, severity: str = "warning") -> Alert:
    return Alert(
        id=id_,
        host="h",
        key=f"k{id_}",
        kind=AlertKind.DISK,
        severity=AlertSeverity(severity),
        message=message,
        raised_at=datetime(2025, 3, 14, 12, tzinfo=UTC),
    )


def _with(
    snap: Snapshot,
    name: str,
    state: str | None = None,
    health: SessionHealth | None = None,
    **fields: Any,
) -> Snapshot:
    views = []
    for view in snap.views:
        if view.name == name:
            session = view.session.model_copy(update=fields)
            proc = (
                replace(view.process, state=ProcessState(state))
                if (view.process and state)
                else view.process
            )
            view = SessionView(session, proc, health or view.health)
        views.append(view)
    return replace(snap, views=tuple(views), _by_name={})


def test_changes_worth_a_notification() -> None:
    base = fixed_snapshot()
    assert notable_changes(None, base) == []
    assert notable_changes(base, base) == []

    fatal = _with(base, "cliente-005", "FATAL")
    (change,) = notable_changes(base, fatal)
    assert change.severity == "error" and "cliente-005" in change.message
    assert "FATAL" in change.message

    error = _with(base, "cliente-001", status=Status.ERROR, last_error="auth is corrupt")
    (change,) = notable_changes(base, error)
    assert change.message == "cliente-001: error: auth is corrupt"

    paired = _with(base, "cliente-002", status=Status.CONNECTED, phone="5511900000000")
    (change,) = notable_changes(base, paired)
    assert change.severity == "information" and change.message.endswith("5511900000000")

    gone = _with(base, "cliente-001", status=Status.PHONE_DISCONNECTED)
    assert notable_changes(base, gone)[0].severity == "warning"

    # an operator's stop is not news; neither is a restart reconnecting a paired phone
    stopped = _with(base, "cliente-001", "STOPPED")
    assert notable_changes(base, stopped) == []
    starting = _with(base, "cliente-001", "STARTING", status=Status.INITIALIZING)
    assert notable_changes(starting, base) == []

    # what the health monitor did: a restart (with its reason), a parking
    hung = SessionHealth(name="cliente-001", restarts=1, last_restart_reason="hung: 3 checks")
    (change,) = notable_changes(base, _with(base, "cliente-001", health=hung))
    assert change.message == "cliente-001: the health monitor restarted it (hung: 3 checks)"
    parked = SessionHealth(
        name="cliente-004", parked_at=NOW, why_down="crash loop: 5 exits in 10 minutes"
    )
    (change,) = notable_changes(base, _with(base, "cliente-004", health=parked))
    assert change.severity == "error"
    assert change.message == (
        "cliente-004: parked: crash loop: 5 exits in 10 minutes (s starts it again)"
    )

    # a newly raised alert is announced once; the ones already active are not
    active = (_alert(1, "disk 91% full"),)
    before = replace(base, alerts=active)
    after = replace(before, alerts=(_alert(2, "RAM 90%", "critical"), *active))
    (change,) = notable_changes(before, after)
    assert change.severity == "error" and change.message == "alert: RAM 90%"
    assert notable_changes(after, after) == []
    assert notable_changes(replace(base, alerts=None), after) == []


def _cpu_seconds(pid: int) -> float:
    return (read_proc_stat(pid) or (0, 0.0, 0))[1]


@pytest.mark.parametrize("use_proc", [True, False], ids=["proc", "psutil"])
def test_sampler_measures_cpu_between_calls_and_reads_pss_sometimes(use_proc: bool) -> None:
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        # measured once the interpreter is up (right after exec RSS reads 0)
        wait_for(lambda: _cpu_seconds(busy.pid) > 0.05)
        now = [0.0]
        sampler = ProcessSampler(pss_every=30.0, clock=lambda: now[0], use_proc=use_proc)
        first = sampler.sample([busy.pid])[busy.pid]
        assert first.rss > 0 and first.pss is not None and first.pss > 0
        # however loaded the machine, wait until it has burnt some CPU since
        used = _cpu_seconds(busy.pid)
        wait_for(lambda: _cpu_seconds(busy.pid) > used + 0.05)
        now[0] = 1.0
        second = sampler.sample([busy.pid])[busy.pid]
        assert 0 < second.cpu_percent <= 100 * (os.cpu_count() or 1) + 5
        assert second.pss == first.pss  # kept, not re-read, within pss_every
    finally:
        busy.kill()
        busy.wait()
    assert sampler.sample([busy.pid]) == {}


def test_sampler_can_leave_the_first_pss_pass_for_later() -> None:
    # the app's first tick: rows at once, PSS (~1 ms a runner) from a later tick
    now = [100.0]
    sampler = ProcessSampler(pss_every=30.0, clock=lambda: now[0], first_pss_after=2.0)
    first = sampler.sample([os.getpid()])[os.getpid()]
    assert first.rss > 0 and first.pss is None
    now[0] = 101.0
    assert sampler.sample([os.getpid()])[os.getpid()].pss is None
    now[0] = 102.0
    third = sampler.sample([os.getpid()])[os.getpid()].pss
    assert third is not None and third > 0


def test_sampler_reads_the_pss_only_of_the_pids_asked() -> None:
    # the sessions table shows no PSS: its ticks ask for none; a session screen asks for
    # its runner's, read at the next tick rather than at the next 30 s pass
    me, parent = os.getpid(), os.getppid()
    now = [100.0]
    sampler = ProcessSampler(pss_every=30.0, clock=lambda: now[0], first_pss_after=2.0)
    table = sampler.sample([me, parent], pss_of=set())
    assert table[me].rss > 0 and table[me].pss is None and table[parent].pss is None
    now[0] = 140.0  # past a pass: still none asked
    assert all(p.pss is None for p in sampler.sample([me, parent], pss_of=set()).values())
    now[0] = 141.0
    screen = sampler.sample([me, parent], pss_of={me})
    pss = screen[me].pss
    assert pss is not None and pss > 0
    assert screen[parent].pss is None
    assert sampler.sample([me, parent], pss_of=set())[me].pss is None  # screen closed


def test_sampler_reads_the_pids_shown_every_time_and_the_others_every_few_seconds() -> None:
    # the sessions table asks for its rows on screen; the others' figures are repeated
    # between two passes, and a pid never read yet is read at once
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        wait_for(lambda: _cpu_seconds(busy.pid) > 0.05)
        me = os.getpid()
        now = [100.0]
        sampler = ProcessSampler(clock=lambda: now[0], full_every=5.0)
        first = sampler.sample([me, busy.pid], fresh_of={me})  # the first pass reads all
        assert first[busy.pid].rss > 0 and first[busy.pid].cpu_percent == 0.0
        used = _cpu_seconds(busy.pid)
        wait_for(lambda: _cpu_seconds(busy.pid) > used + 0.05)
        now[0] = 101.0
        kept = sampler.sample([me, busy.pid], fresh_of={me})
        assert kept[busy.pid] == first[busy.pid], "not shown: repeated until the next pass"
        assert sampler.sample([me, busy.pid], fresh_of={busy.pid})[busy.pid].cpu_percent > 0
        parent = os.getppid()
        assert sampler.sample([me, busy.pid, parent], fresh_of={me})[parent].rss > 0
        used = _cpu_seconds(busy.pid)
        wait_for(lambda: _cpu_seconds(busy.pid) > used + 0.05)
        now[0] = 106.0  # a pass: every pid read again, the CPU since its last read
        assert sampler.sample([me, busy.pid], fresh_of={me})[busy.pid].cpu_percent > 0
    finally:
        busy.kill()
        busy.wait()
    assert busy.pid not in sampler.sample([me], fresh_of={me})


def test_follower_reads_appended_lines_and_survives_rotation(tmp_path: Path) -> None:
    log = tmp_path / "wa-x.log"
    log.write_text("old line\n")
    follower = logfiles.Follower([log, tmp_path / "missing.log"])
    assert follower.read() == []
    with log.open("a") as fh:
        fh.write("one\ntwo\npart")
    assert [line for _p, line in follower.read()] == ["one", "two"]
    with log.open("a") as fh:
        fh.write("ial\n")
    assert [line for _p, line in follower.read()] == ["partial"]
    log.rename(tmp_path / "wa-x.log.1")  # supervisord rotates: a new file appears
    log.write_text("fresh\n")
    assert wait_for(lambda: [line for _p, line in follower.read()]) == ["fresh"]


def test_supervisord_credentials_are_created_once_when_threads_race(tmp_path: Path) -> None:
    # The app's first refresh and its boot both ask for a supervisord client at once.
    paths = StatePaths(tmp_path)
    paths.ensure()
    barrier = threading.Barrier(8)
    got: list[daemon.Credentials] = []

    def ask() -> None:
        barrier.wait()
        got.append(daemon.credentials(paths))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 and len(set(got)) == 1
    assert daemon.credentials(paths) == got[0]
