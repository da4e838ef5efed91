"""The monitor's first pass after supervisord started: start the sessions meant to run
that this supervisord never started (it came up on its own: systemd at boot, or a
restart after a crash), paced as they come up, with the function a command uses."""

from __future__ import annotations

import logging

from ecosystem import boot
from ecosystem.errors import ZapvisorError
from ecosystem.filelock import file_lock
from ecosystem.health.model import MONITOR_ACTOR
from ecosystem.names import program_name
from ecosystem.paths import StatePaths
from ecosystem.settings import Settings
from ecosystem.states import DesiredState
from ecosystem.store import Store
from ecosystem.supctl.rpc import Supervisor, never_started

log = logging.getLogger("health")


def start_never_started(settings: Settings, store: Store, sup: Supervisor) -> boot.StartReport:
    """Programs STOPPED with a start time of 0 were never started by this supervisord;
    one an operator stopped (even with supervisorctl) has a start time and stays."""
    paths = StatePaths(settings.home)
    wanted = [
        s for s in store.list_sessions(settings.host_id) if s.desired_state == DesiredState.RUNNING
    ]
    # A command that found supervisord down started it holding the apply lock, and
    # starts these sessions itself: wait for it to be done rather than start them a
    # second time (a monitor forked from supervisord is up before that command's
    # first start). systemd's `serve` holds no lock: this pass starts them.
    with file_lock(paths.apply_lock, settings.start_timeout * (len(wanted) + 1)):
        pass
    try:
        boot.reap_orphans(paths.home, sup.pid())
    except ZapvisorError as exc:
        log.warning("cannot look for orphaned runners: %s", exc)
    never = set(never_started(sup.all_process_info()))
    targets = [(s.name, s.port) for s in wanted if program_name(s.name) in never]
    if not targets:
        return boot.StartReport()
    log.info("starting %d session(s) supervisord has not started", len(targets))

    report = boot.start_many(
        sup,
        paths,
        targets,
        bind=settings.bind,
        timeout=settings.start_timeout,
        ceiling=settings.start_concurrency,
        lock_timeout=settings.start_timeout * (len(targets) + 1),
    )
    store.add_event(
        None,
        "boot_start",
        actor=MONITOR_ACTOR,
        detail={"started": len(report.started), "failed": report.failed},
    )
    return report
