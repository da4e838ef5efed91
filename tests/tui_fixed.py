"""Fixed data for the app's screenshots: the same sessions, pids, times and host figures
on every run, injected where a real refresh would read the store, supervisord and
psutil (a ``Poller`` whose ``tick`` returns a constant snapshot). Only the screenshot
tests use it; every behaviour test runs against a real supervisord and real runners."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ecosystem import __version__
from ecosystem.conversations import BotActivity
from ecosystem.health.model import Alert, AlertKind, SessionHealth, Severity
from ecosystem.hostview import HostReport, HostState
from ecosystem.liveview import Poller, Snapshot
from ecosystem.metrics import HostStats, ProcStats
from ecosystem.models import Session
from ecosystem.orchestrator import Orchestrator
from ecosystem.reads import CLEARED_KEPT
from ecosystem.settings import make_settings
from ecosystem.states import DesiredState, ProcessState, Status
from ecosystem.supctl.rpc import ProcessInfo
from ecosystem.views import SessionView
from runner.connectors.sim_codes import sim_payload
from tui.app import ZapvisorApp

NOW = datetime(2025, 3, 14, 12, 0, 0, tzinfo=UTC)
EPOCH = int(NOW.timestamp())
GIB = 1 << 30
MIB = 1 << 20


def _proc(name: str, state: str, pid: int | None, up: int = 0, **extra: Any) -> ProcessInfo:
    return ProcessInfo(
        name=f"wa-{name}",
        state=ProcessState(state),
        pid=pid,
        start=EPOCH - up if pid else 0,
        now=EPOCH,
        stop=0 if pid else EPOCH - 60,
        exitstatus=extra.get("exitstatus", 0),
        spawnerr=extra.get("spawnerr", ""),
        description="",
    )


def _session(name: str, port: int, **fields: Any) -> Session:
    created = NOW - timedelta(days=3)
    return Session(
        name=name, host="vps-sp-01", port=port, created_at=created, updated_at=NOW, **fields
    )


CRASH_LOOP = "crash loop: 5 exits in 10 minutes"
HEALTH = {
    "cliente-003": SessionHealth(
        name="cliente-003",
        restarts=4,
        exits=5,
        last_exit_status=1,
        last_exit_at=NOW - timedelta(minutes=7),
        last_restart_at=NOW - timedelta(minutes=8),
        last_restart_reason="exited with status 1",
        parked_at=NOW - timedelta(minutes=7),
        why_down=f"{CRASH_LOOP}; stderr: KeyError: 'phone'",
    ),
    "loja-centro": SessionHealth(
        name="loja-centro",
        restarts=3,
        exits=0,
        last_restart_at=NOW - timedelta(seconds=95),
        last_restart_reason="stuck: reconnecting for 301 s",
    ),
}


def _alert(id_: int, kind: AlertKind, message: str, ago: int, **extra: Any) -> Alert:
    return Alert(
        id=id_,
        host="vps-sp-01",
        key=f"{kind}:{extra.get('session_name', '')}",
        kind=kind,
        message=message,
        raised_at=NOW - timedelta(minutes=ago),
        **extra,
    )


ALERTS = (
    _alert(
        4,
        AlertKind.SESSION_ERROR,
        f"cliente-003 is in error: {CRASH_LOOP}",
        7,
        session_name="cliente-003",
        severity=Severity.CRITICAL,
    ),
    _alert(3, AlertKind.DISK, "disk 87% full (threshold 85%)", 42, value=87.0),
    _alert(
        2,
        AlertKind.WEBHOOK_DEAD_LETTERS,
        "2 webhook events dead-lettered (zapvisor webhooks NAME --replay)",
        60 * 3,
        cleared_at=NOW - timedelta(hours=2),
    ),
    _alert(
        1,
        AlertKind.RAM,
        "RAM 91% used (threshold 85%)",
        60 * 30,
        cleared_at=NOW - timedelta(hours=29),
    ),
)
"""Newest first, as the store lists them; the last one was cleared over a day ago."""


def fixed_snapshot() -> Snapshot:
    rows = [
        (
            _session(
                "cliente-001",
                3001,
                status=Status.CONNECTED,
                phone="5511987654321",
                connected_at=NOW - timedelta(hours=3),
                last_activity_at=NOW - timedelta(minutes=2),
            ),
            _proc("cliente-001", "RUNNING", 41017, up=3 * 3600 + 300),
        ),
        (
            _session(
                "cliente-002",
                3002,
                status=Status.WAITING_SCAN,
                qr_payload=sim_payload("cliente-002", 3),
                qr_expires_at=NOW + timedelta(seconds=14),
            ),
            _proc("cliente-002", "RUNNING", 41023, up=45),
        ),
        (
            _session(
                "cliente-003",
                3003,
                desired_state=DesiredState.STOPPED,
                status=Status.ERROR,
                last_error=CRASH_LOOP,
            ),
            _proc("cliente-003", "STOPPED", None),
        ),
        (
            _session("cliente-004", 3004, status=Status.CONNECTED, phone="5521912345678"),
            _proc("cliente-004", "FATAL", None, exitstatus=1, spawnerr="Exited too quickly"),
        ),
        (
            _session("cliente-005", 3005, status=Status.ERROR, last_error="auth file is corrupt"),
            _proc("cliente-005", "RUNNING", 41101, up=600),
        ),
        (
            _session(
                "loja-centro",
                3006,
                status=Status.RECONNECTING,
                phone="5531998877665",
                last_activity_at=NOW - timedelta(hours=5),
            ),
            _proc("loja-centro", "RUNNING", 41140, up=90),
        ),
        (
            _session("loja-norte", 3007, status=Status.PHONE_DISCONNECTED, phone="5541988776655"),
            _proc("loja-norte", "RUNNING", 41152, up=2 * 86400 + 7200),
        ),
    ]
    views = tuple(SessionView(s, p, HEALTH.get(s.name)) for s, p in rows)
    procs = {
        41017: ProcStats(0.3, int(18.4 * MIB), int(14.1 * MIB)),
        41023: ProcStats(1.2, int(17.9 * MIB), None),
        41101: ProcStats(0.0, int(16.2 * MIB), None),
        41140: ProcStats(4.8, int(19.0 * MIB), None),
        41152: ProcStats(0.1, int(18.8 * MIB), None),
    }
    return Snapshot(
        taken_at=NOW,
        views=views,
        procs=procs,
        host=HostStats(12.0, 2, 0.42, int(3.1 * GIB), int(7.8 * GIB), 33 * GIB, 80 * GIB, 41.25),
        supervisord_up=True,
        store="sqlite /var/lib/zapvisor/zapvisor.db",
        host_id="vps-sp-01",
        max_sessions=10,
        alerts=tuple(a for a in ALERTS if a.active),
    )


class FixedPoller(Poller):
    def boot(self) -> None:
        pass

    def tick(self) -> Snapshot:
        return fixed_snapshot()

    def alert_history(self, limit: int = 100) -> list[Alert] | None:
        oldest = NOW - CLEARED_KEPT
        return [a for a in ALERTS if a.cleared_at is None or a.cleared_at >= oldest]

    def webhook_counts(self, name: str) -> dict[str, int] | None:
        return {"pending": 1, "delivered": 118, "dead": 2}

    def bot_activity(self, name: str) -> BotActivity | None:
        return None


def fixed_app(home: Path, **settings: Any) -> ZapvisorApp:
    """The app over the fixed snapshot (its orchestrator is never called)."""
    orch = Orchestrator(make_settings(home=home, host_id="vps-sp-01", **settings))
    return ZapvisorApp(orch, poller=FixedPoller(orch), clock=lambda: NOW, blink=False)


def crowded_snapshot(extra: int) -> Snapshot:
    """The fixed snapshot and ``extra`` more connected sessions: more rows than 80x24
    shows, so the table scrolls."""
    snap = fixed_snapshot()
    views = list(snap.views)
    procs = dict(snap.procs)
    for i in range(8, 8 + extra):
        name, pid = f"cliente-{i:03d}", 42000 + i
        session = _session(name, 3000 + i, status=Status.CONNECTED, phone=f"55119{i:08d}")
        views.append(SessionView(session, _proc(name, "RUNNING", pid, up=1000 * i), None))
        procs[pid] = ProcStats(1.0, 18 * MIB, None)
    return replace(snap, views=tuple(views), procs=procs, max_sessions=200)


class CrowdedPoller(FixedPoller):
    extra = 40

    def tick(self) -> Snapshot:
        return crowded_snapshot(self.extra)


def crowded_app(home: Path) -> ZapvisorApp:
    orch = Orchestrator(make_settings(home=home, host_id="vps-sp-01", max_sessions=200))
    return ZapvisorApp(orch, poller=CrowdedPoller(orch), clock=lambda: NOW, blink=False)


def fleet_snapshot() -> Snapshot:
    """The fixed snapshot spread over three hosts: this one, vps-rj-02 answering, and
    vps-mg-03 silent since 11:58:20 (its rows greyed with their last known state)."""
    snap = fixed_snapshot()
    where = {"cliente-004": "vps-rj-02", "cliente-005": "vps-rj-02", "loja-norte": "vps-mg-03"}
    views = []
    for view in snap.views:
        host = where.get(view.name, "vps-sp-01")
        silent = "host unreachable since 11:58:20" if host == "vps-mg-03" else None
        session = view.session.model_copy(update={"host": host})
        views.append(SessionView(session, view.process, view.health, silent))

    def report(host: str, version: str, mem: float, procs: dict[int, ProcStats]) -> HostReport:
        stats = HostStats(20.0, 4, 0.9, int(mem * GIB), int(15.6 * GIB), 20 * GIB, 160 * GIB, 12.5)
        return HostReport(host, version, NOW, True, 40, 3001, {}, procs, stats)

    rj = {41101: snap.procs[41101]}
    mg = {41152: snap.procs[41152]}
    local = HostReport(
        "vps-sp-01", __version__, NOW, True, 10, 3001, {}, dict(snap.procs), snap.host
    )
    hosts = {
        "vps-sp-01": HostState("vps-sp-01", local, local=True, sessions=4),
        "vps-rj-02": HostState(
            "vps-rj-02", report("vps-rj-02", __version__, 5.2, rj), latency_ms=38, sessions=2
        ),
        "vps-mg-03": HostState(
            "vps-mg-03",
            report("vps-mg-03", "0.0.9", 9.9, mg),
            reachable=False,
            since=NOW - timedelta(seconds=100),
            error="vps-mg-03 did not answer host_report within 5 s",
            sessions=1,
        ),
    }
    return replace(snap, views=tuple(views), hosts=hosts, _by_name={})


class FleetPoller(FixedPoller):
    def tick(self) -> Snapshot:
        return fleet_snapshot()


def fleet_app(home: Path) -> ZapvisorApp:
    orch = Orchestrator(make_settings(home=home, host_id="vps-sp-01"))
    return ZapvisorApp(orch, poller=FleetPoller(orch), clock=lambda: NOW, blink=False)
