"""What every operator action stands on: the settings, the store and supervisord of this
host, applying supervisord's config, waiting for a runner's health, asking why it is down.

The actions themselves are in ``lifecycle.py``, ``session_access.py`` and ``reads.py``;
``orchestrator.py`` puts them together behind one door.
"""

from __future__ import annotations

import contextvars
import os
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ecosystem import apitoken
from ecosystem.errors import RunnerError, StoreUnsupported
from ecosystem.health.model import SessionHealth
from ecosystem.names import program_name, validate_name
from ecosystem.paths import StatePaths
from ecosystem.session import Session
from ecosystem.settings import Settings
from ecosystem.states import FAILING_STATES
from ecosystem.store import Store, open_store
from ecosystem.supctl import daemon
from ecosystem.supctl.rpc import ProcessInfo, Supervisor, SupervisorDown
from ecosystem.views import SessionView, down_ports, port_holders, session_views

if TYPE_CHECKING:
    from ecosystem.boot import StartReport
    from ecosystem.fleet.links import HostLinks
    from ecosystem.supctl.apply import ApplyResult

# Applying the config (supctl.apply: rendering, supervisor's parser), starting runners
# (boot.py) and calling a runner (runner_client: http.client) are imported by the
# methods that do them: a read through an up supervisord does none of them, and `list`
# is most often that (tests/test_layering.py keeps it so).

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


ACTING_FOR: contextvars.ContextVar[str | None] = contextvars.ContextVar("acting_for", default=None)
"""Who a host's agent is acting for in the current call (the operator and the control
machine, as the control side said), recorded in the audit trail instead of the agent's
own user."""


def current_actor() -> str:
    """The operator and the machine they work on (`alice@laptop`)."""
    import getpass  # its import pulls in the terminal modules: only when asked

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid:{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


class Plumbing:
    def __init__(
        self,
        settings: Settings,
        store: Store | None = None,
        *,
        actor: str | None = None,
        progress: Progress = _quiet,
        links: HostLinks | None = None,
    ) -> None:
        self.settings = settings
        self.links = links
        """The control side's links to the fleet's other hosts (None: this host only)."""
        self.paths = StatePaths(settings.home)
        self._store = store
        self.operator = actor or current_actor()
        """Who acts, and from which machine: what a host's agent is told."""
        self.progress = progress
        self._sup: Supervisor | None = None
        self._last_start: StartReport | None = None
        # The terminal app calls in from several worker threads at once: open the
        # store and the supervisord client once, whichever thread comes first.
        self._open_lock = threading.Lock()

    @property
    def actor(self) -> str:
        """Who the audit trail says acted, from which machine, on which host:
        `alice@laptop` on the machine itself, `alice@laptop on vps2` elsewhere (through
        vps2's agent, or with a ZAPVISOR_HOST_ID that is not the machine's name)."""
        who = ACTING_FOR.get() or self.operator
        _user, at, machine = who.rpartition("@")
        return who if not at or machine == self.host_id else f"{who} on {self.host_id}"

    @property
    def store(self) -> Store:
        if self._store is None:
            with self._open_lock:
                if self._store is None:
                    self.paths.ensure()
                    store = open_store(self.settings)
                    if store.kind == "sqlite":
                        store.migrate()  # the embedded store needs no setup step
                    self._store = store
        return self._store

    @property
    def sup(self) -> Supervisor:
        if self._sup is None:
            with self._open_lock:
                if self._sup is None:
                    self._sup = daemon.client(self.paths)
        return self._sup

    def close(self) -> None:
        if self.links is not None:
            self.links.close()
        if self._store is not None:
            self._store.close()

    @property
    def host_id(self) -> str:
        return self.settings.host_id

    @property
    def ports(self) -> range:
        return range(self.settings.base_port, self.settings.last_port + 1)

    def host_of(self, name: str) -> str:
        """The host that runs the session (the shared store says)."""
        return self.store.get_session(validate_name(name)).host

    def _host_sessions(self, without: str | None = None) -> list[Session]:
        return [s for s in self.store.list_sessions(self.host_id) if s.name != without]

    def apply(self, without: str | None = None) -> ApplyResult:
        """Re-render supervisord's config from the store and apply only the difference
        (starting supervisord, and the sessions meant to run, when it was down)."""
        from ecosystem.supctl import apply as applier

        with applier.apply_lock(self.paths):
            result = applier.sync(
                self.paths, self.settings, self.sup, self._host_sessions(without), self._start_many
            )
        if result.booted:
            self.progress(f"started supervisord; {len(result.started)} session(s) started")
        return result

    def ensure_up(self) -> None:
        """Bring supervisord back when it is down (sessions return to desired states)."""
        self.paths.ensure()
        if not daemon.is_up(self.sup):
            self.apply()

    def _start_many(self, targets: list[tuple[str, int]]) -> list[str]:
        """Start runners (name, port) and wait for their /health, as many at once as
        the host takes (boot.py; the health monitor uses the same function when
        supervisord came up on its own)."""
        from ecosystem.boot import start_many

        report = start_many(
            self.sup,
            self.paths,
            targets,
            bind=self.settings.bind,
            timeout=self.settings.start_timeout,
            ceiling=self.settings.start_concurrency,
            lock_timeout=self.settings.start_timeout * (len(targets) + 1),
            why=self._why_down,
        )
        self._last_start = report
        return report.started

    def _start_one(self, name: str, port: int) -> None:
        """Start the session's runner and wait for its /health; RunnerError says why
        it did not come up."""
        from ecosystem.boot import start_many

        failed = start_many(
            self.sup,
            self.paths,
            [(name, port)],
            bind=self.settings.bind,
            timeout=self.settings.start_timeout,
            ceiling=1,
            lock_timeout=0.0,
            why=self._why_down,
        ).failed
        if name in failed:
            raise RunnerError(failed[name])

    def _start_failures(self) -> dict[str, str]:
        """The sessions the last start in this process left unhealthy, with why."""
        return {} if self._last_start is None else self._last_start.failed

    def _why_down(self, name: str) -> str:
        """The best explanation supervisord can give: spawn error, exit status, the last
        lines the runner wrote on stderr."""
        program = program_name(name)
        info = self.sup.process_info(program)
        if info is None:
            return "supervisord has no program for it"
        parts = []
        if info.spawnerr:
            parts.append(info.spawnerr)
        if info.state in FAILING_STATES:
            status = self.sup.exit_status(info)
            if status is not None:
                parts.append("killed by a signal" if status < 0 else f"exit status {status}")
        lines = [ln for ln in self.sup.tail_stderr(program).splitlines() if ln.strip()]
        if lines:
            parts.append("stderr: " + " | ".join(lines[-3:]))
        return "; ".join(parts) or f"state {info.state}; see `zapvisor logs {name}`"

    def _health(self) -> dict[str, SessionHealth]:
        """The health monitor's records (restarts, exits, why down) for this host; empty
        with a store that does not keep them yet."""
        try:
            return self.store.list_health(self.host_id)
        except StoreUnsupported:
            return {}

    def _one_health(self, name: str) -> SessionHealth | None:
        """The monitor's record for one session; None when it has none."""
        try:
            found = self.store.get_health(name)
        except StoreUnsupported:
            return None
        return None if found.same_as(SessionHealth(name=name)) else found

    def _process_info(self, name: str) -> ProcessInfo | None:
        self.ensure_up()
        try:
            return self.sup.process_info(program_name(name))
        except SupervisorDown:
            return None

    def _views(
        self, read: Callable[[], list[Session]], *, one: str | None = None
    ) -> list[SessionView]:
        """The sessions ``read`` returns, joined with supervisord's facts, the monitor's
        records and, for those whose runner is down, whoever holds their port. The
        store is read after supervisord: when this starts it (and the sessions), the
        statuses are what the new runners report, not what the old ones last said.
        With ``one`` (a session's name) only its process and health record are read:
        one getProcessInfo and one row, whatever the number of sessions."""
        if one is None:
            infos = self._process_infos()
        else:
            info = self._process_info(one)
            infos = {} if info is None else {program_name(one): info}
        sessions = read()
        if one is None:
            health = self._health()
        else:
            record = self._one_health(one)
            health = {} if record is None else {one: record}
        down = down_ports(sessions, infos)
        holders = port_holders(down, self.settings.bind) if down else {}
        return session_views(sessions, infos, health, holders)

    def _process_infos(self) -> dict[str, ProcessInfo]:
        self.ensure_up()
        try:
            return self.sup.all_process_info()
        except SupervisorDown:
            return {}

    def _runner_call(
        self, session: Session, method: str, path: str, body: object = None, timeout: float = 3.0
    ) -> object:
        from ecosystem import runner_client

        token = apitoken.read_token(self.paths, session.name)
        status, answer = runner_client.call(
            self.settings.bind,
            session.port,
            path,
            method=method,
            token=token,
            body=body,
            timeout=timeout,
        )
        if status >= 400:
            raise runner_client.refusal(session.name, status, answer)
        return answer
