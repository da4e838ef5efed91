"""The monitor's first pass after supervisord started: start the sessions meant to run
that this supervisord never started (it came up on its own: systemd at boot, or a
restart after a crash), a wave at a time, with the function a zapvisor command uses."""

from __future__ import annotations

import logging
import time

from ecosystem import boot
from ecosystem.errors import RunnerError, ZapvisorError
from ecosystem.health.model import MONITOR_ACTOR
from ecosystem.health.probe import OK, probe_many
from ecosystem.names import program_name
from ecosystem.paths import StatePaths
from ecosystem.settings import Settings
from ecosystem.states import STOPPED_STATES, DesiredState
from ecosystem.store import Store
from ecosystem.supctl.apply import never_started
from ecosystem.supctl.rpc import Supervisor

log = logging.getLogger("health")


def start_never_started(settings: Settings, store: Store, sup: Supervisor) -> boot.StartReport:
    """Programs STOPPED with a start time of 0 were never started by this supervisord;
    one an operator stopped (even with supervisorctl) has a start time and stays."""
    paths = StatePaths(settings.home)
    try:
        boot.reap_orphans(paths.home, sup.pid())
    except ZapvisorError as exc:
        log.warning("cannot look for orphaned runners: %s", exc)
    never = set(never_started(sup.all_process_info()))
    targets = [
        (s.name, s.port)
        for s in store.list_sessions(settings.host_id)
        if s.desired_state == DesiredState.RUNNING and program_name(s.name) in never
    ]
    if not targets:
        return boot.StartReport()
    log.info("starting %d session(s) supervisord has not started", len(targets))

    def wait_healthy(name: str, port: int) -> None:
        deadline = time.monotonic() + settings.start_timeout
        polls = 0
        while time.monotonic() < deadline:
            if probe_many(settings.bind, {name: port}, 0.5)[name] == OK:
                return
            polls += 1
            if polls % 10 == 0:
                info = sup.process_info(program_name(name))
                if info is not None and info.state in STOPPED_STATES:
                    raise RunnerError(f"{name}'s runner is {info.state}")
            time.sleep(0.05)
        raise RunnerError(f"{name}'s runner did not answer /health on port {port}")

    report = boot.start_in_waves(
        sup,
        paths,
        targets,
        concurrency=settings.start_concurrency,
        wait_healthy=wait_healthy,
        lock_timeout=settings.start_timeout * (len(targets) + 1),
    )
    store.add_event(
        None,
        "boot_start",
        actor=MONITOR_ACTOR,
        detail={"started": len(report.started), "failed": report.failed},
    )
    return report
