"""`zapvisor doctor`: every moving part checked, each with what to do when it is not OK."""

from __future__ import annotations

import contextlib
import re
import stat
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ecosystem import runner_client
from ecosystem.doctor_state import (
    FAIL,
    OK,
    WARN,
    Check,
    config_check,
    ports_check,
    session_file_checks,
)
from ecosystem.errors import ZapvisorError
from ecosystem.health import status
from ecosystem.names import program_name
from ecosystem.session import utcnow
from ecosystem.states import DesiredState, ProcessState, Status
from ecosystem.store import migrations
from ecosystem.supctl import daemon
from ecosystem.supctl.render import MONITOR_PROGRAM
from ecosystem.supctl.rpc import ProcessInfo
from ecosystem.views import down_ports, port_holders, session_views

if TYPE_CHECKING:
    from ecosystem.reads import Reads


def _mode(path: object) -> int | None:
    try:
        return stat.S_IMODE(path.stat().st_mode)  # type: ignore[attr-defined]
    except OSError:
        return None


def _store_check(orch: Reads) -> Check:
    """Which store is in use (sqlite, postgres, supabase), whether it answers, and
    whether its schema is current."""
    kind = orch.settings.store_kind
    try:
        store = orch.store
        started = time.perf_counter()
        version = store.schema_version()
        missing = migrations.pending(
            "sqlite" if kind == "sqlite" else "postgres", store.applied_versions()
        )
        count = len(store.list_sessions(orch.settings.host_id))
        elapsed = (time.perf_counter() - started) * 1000
    except ZapvisorError as exc:
        fix = {
            "sqlite": f"check that {orch.settings.home} is writable",
            "postgres": "check ZAPVISOR_DATABASE_URL and that the server runs",
            "supabase": "check SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY and the project's status",
        }[kind]
        return Check("store", FAIL, f"{kind}: {exc}", fix)
    try:
        store.check_writable()
    except ZapvisorError as exc:
        fix = {
            "sqlite": f"check that {orch.settings.home} is writable and its disk is not full "
            f"(`df -h {orch.settings.home}`, `lsattr {orch.settings.home}`)",
            "postgres": "point ZAPVISOR_DATABASE_URL at the primary, writable server",
            "supabase": "check the project's status (paused, read-only, over its disk)",
        }[kind]
        return Check("store", FAIL, f"{kind} answers reads but refuses writes: {exc}", fix)
    found = migrations.load("sqlite" if kind == "sqlite" else "postgres")
    latest = found[-1].version if found else 0
    detail = (
        f"{store.describe()} answers in {elapsed:.0f} ms, schema v{version}, "
        f"{count} session(s) on host {orch.settings.host_id}; {store.live_updates}"
    )
    if missing:
        return Check("store", WARN, f"{detail}; v{latest} available", "`zapvisor db migrate`")
    return Check("store", OK, detail)


def run_checks(orch: Reads) -> list[Check]:
    s, paths = orch.settings, orch.paths
    checks: list[Check] = []
    try:
        paths.ensure()
        mode = _mode(paths.home)
        level = OK if mode == 0o700 else WARN
        checks.append(
            Check(
                "state dir",
                level,
                f"{paths.home} (mode {mode:04o})" if mode else str(paths.home),
                "" if level == OK else f"chmod 700 {paths.home}",
            )
        )
    except ZapvisorError as exc:
        return [Check("state dir", FAIL, str(exc), "set ZAPVISOR_HOME to a writable folder")]

    sessions = []
    checks.append(_store_check(orch))
    store_ok = checks[-1].level != FAIL
    if store_ok:
        with contextlib.suppress(ZapvisorError):
            sessions = orch.store.list_sessions(s.host_id)

    sup_error = ""
    try:
        sup_up = daemon.is_up(orch.sup)
    except ZapvisorError as exc:
        sup_up, sup_error = False, str(exc)
    sock_mode = _mode(paths.socket)
    if sup_up:
        checks.append(Check("supervisord", OK, f"pid {orch.sup.pid()}, socket {paths.socket}"))
        if sock_mode is not None and sock_mode & 0o077:
            checks.append(
                Check(
                    "socket",
                    WARN,
                    f"{paths.socket} mode {sock_mode:04o}",
                    f"chmod 700 {paths.socket}",
                )
            )
    elif sup_error:
        checks.append(Check("supervisord", FAIL, sup_error, f"see {paths.supervisord_log}"))
    else:
        checks.append(
            Check(
                "supervisord",
                WARN,
                f"not running (socket {paths.socket})",
                "any zapvisor command that needs it (list, start…) starts it",
            )
        )
    conf_mode = _mode(paths.conf)
    if conf_mode is not None and conf_mode & 0o077:
        checks.append(
            Check(
                "config",
                FAIL,
                f"{paths.conf} is mode {conf_mode:04o} (has secrets)",
                f"chmod 600 {paths.conf}",
            )
        )

    conf = config_check(orch, sessions if store_ok else None)
    if conf is not None:
        checks.append(conf)
    checks.append(ports_check(orch, sessions if store_ok else None))

    overlap = _ephemeral_overlap(orch.ports)
    if overlap:
        lo, hi = overlap
        checks.append(
            Check(
                "port range",
                WARN,
                f"{s.base_port}-{s.last_port} overlaps the kernel's ephemeral ports {lo}-{hi}: "
                "an outgoing connection can briefly take a session's port",
                f"set BASE_PORT below {lo} (the default is 3001)",
            )
        )

    health = {}
    if store_ok:  # a store that failed its check is not asked (and waited on) again
        with contextlib.suppress(ZapvisorError):
            health = orch.health()
    for x in sessions:
        h = health.get(x.name)
        if h is not None and h.parked_at is not None and x.desired_state != DesiredState.RUNNING:
            checks.append(
                Check(
                    f"session {x.name}",
                    WARN,
                    f"parked since {h.parked_at:%Y-%m-%d %H:%M} UTC: {h.why_down or 'crash loop'}",
                    f"`zapvisor logs {x.name} --stderr`, then `zapvisor start {x.name}`",
                )
            )

    infos = orch.sup.all_process_info() if sup_up else {}
    holders = port_holders(down_ports(sessions, infos), s.bind)
    checks += session_file_checks(orch, session_views(sessions, infos, health, holders))
    if sup_up:
        if s.monitor:
            checks.append(monitor_check(orch, infos.get(MONITOR_PROGRAM)))
        for x in sessions:
            if x.desired_state != DesiredState.RUNNING:
                continue
            info = infos.get(program_name(x.name))
            if info is None:
                checks.append(
                    Check(
                        f"session {x.name}",
                        FAIL,
                        "no program in supervisord",
                        "`zapvisor apply` re-renders the config",
                    )
                )
            elif info.state == ProcessState.STARTING:
                checks.append(Check(f"session {x.name}", OK, "starting"))
            elif info.state == ProcessState.STOPPED and info.start == 0:
                checks.append(
                    Check(
                        f"session {x.name}",
                        FAIL,
                        "meant to run but never started (a create or start was interrupted)",
                        "`zapvisor apply` starts it",
                    )
                )
            elif info.state != ProcessState.RUNNING:
                checks.append(
                    Check(
                        f"session {x.name}",
                        FAIL,
                        f"{info.state}: {orch.why_down(x.name)}",
                        f"`zapvisor logs {x.name}`, then `zapvisor start {x.name}`",
                    )
                )
            elif not runner_client.healthy(s.bind, x.port, timeout=1.0):
                checks.append(
                    Check(
                        f"session {x.name}",
                        WARN,
                        f"RUNNING but /health on port {x.port} does not answer",
                        f"`zapvisor restart {x.name}`",
                    )
                )
            elif x.status in _TROUBLED:
                checks.append(_troubled(x.name, x.status, x.last_error))
    return checks


# The process is fine but the session is not: say why, with the runner's own words.
_TROUBLED = {
    Status.RECONNECTING: "check that this host reaches web.whatsapp.com (DNS, outbound HTTPS)",
    Status.ERROR: "`zapvisor logs {name}`, then `zapvisor restart {name}`",
    Status.PHONE_DISCONNECTED: "the phone logged this device out: `zapvisor qr {name}` to pair",
}


_ADVICE = re.compile(r"`zapvisor [^`]+`")


def _troubled(name: str, state: Status, last_error: str | None) -> Check:
    """The runner's own advice when its error names a command (a corrupt auth says
    `zapvisor logout NAME`: a restart would load the same file again), else ours."""
    reason = f": {last_error}" if last_error else ""
    advice = _ADVICE.findall(last_error or "")
    fix = ", then ".join(advice) if advice else _TROUBLED[state].format(name=name)
    return Check(f"session {name}", WARN, f"{state}{reason}", fix)


def _ephemeral_overlap(ports: range) -> tuple[int, int] | None:
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        lo, hi = (int(x) for x in text.split())
    except (OSError, ValueError):
        return None
    if ports.start <= hi and ports.stop - 1 >= lo:
        return lo, hi
    return None


def monitor_check(orch: Reads, info: ProcessInfo | None) -> Check:
    """The health monitor runs and has checked recently (its `monitor.json`)."""
    log = orch.paths.logs / f"{MONITOR_PROGRAM}.log"
    if info is None:
        return Check("health monitor", FAIL, "no program in supervisord", "`zapvisor apply`")
    if info.state == ProcessState.STARTING:  # supervisord itself just started
        return Check("health monitor", OK, f"starting (pid {info.pid})")
    if info.state != ProcessState.RUNNING:
        return Check(
            "health monitor",
            FAIL,
            f"{info.state}: crashed runners are not restarted",
            f"see {log}, then `zapvisor ctl start {MONITOR_PROGRAM}`",
        )
    state = status.read(orch.paths) or {}
    last = state.get("last_check_at")
    age = None
    if isinstance(last, str):
        age = (utcnow() - datetime.fromisoformat(last)).total_seconds()
    late = 3 * orch.settings.health_interval + 10
    if age is None or age > late:
        shown = "never" if age is None else f"{age:.0f} s ago"
        return Check("health monitor", WARN, f"pid {info.pid}, last check {shown}", f"see {log}")
    problem = state.get("settings_error")
    if isinstance(problem, dict):
        names = ", ".join(problem.get("variables") or []) or orch.paths.runtime_env.name
        return Check(
            "health monitor",
            WARN,
            f"pid {info.pid} runs on {problem.get('runs_on')}: {problem.get('message')}",
            f"fix {names} (in .env or the environment), then `zapvisor apply` rewrites "
            f"{orch.paths.runtime_env}",
        )
    return Check(
        "health monitor",
        OK,
        f"pid {info.pid}, last check {age:.0f} s ago ({state.get('last_check_ms')} ms)",
    )


__all__ = ["FAIL", "OK", "WARN", "Check", "monitor_check", "run_checks"]
