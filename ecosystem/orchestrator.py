"""Every operator action, one call each: the CLI and the TUI are two faces of these."""

from __future__ import annotations

import builtins
import contextlib
import getpass
import os
import shutil
import threading
import time
from collections.abc import Callable

from ecosystem import apitoken, runner_client, webhooks
from ecosystem.boot import StartReport, start_in_waves
from ecosystem.errors import (
    PortsExhausted,
    RunnerError,
    SessionExists,
    SessionNotFound,
    StoreError,
    SupervisorError,
    ZapvisorError,
)
from ecosystem.health.model import Alert, SessionHealth
from ecosystem.models import Event, NewSession, Session, SessionFields
from ecosystem.names import program_name, validate_name
from ecosystem.paths import StatePaths
from ecosystem.ports import busy_ports, who_holds
from ecosystem.settings import Settings
from ecosystem.states import PROCESS_SERVING, DesiredState, Status
from ecosystem.store import Store, open_store
from ecosystem.supctl import apply as applier
from ecosystem.supctl import daemon
from ecosystem.supctl.rpc import ProcessInfo, Supervisor, SupervisorDown
from ecosystem.views import SessionView, session_views

START_CONCURRENCY = 8
"""The default of ZAPVISOR_START_CONCURRENCY (runners started at once at boot)."""

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def current_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


class Orchestrator:
    def __init__(
        self,
        settings: Settings,
        store: Store | None = None,
        *,
        actor: str | None = None,
        progress: Progress = _quiet,
    ) -> None:
        self.settings = settings
        self.paths = StatePaths(settings.home)
        self._store = store
        self.actor = actor or current_actor()
        self.progress = progress
        self._sup: Supervisor | None = None
        self._last_start = StartReport()
        # The terminal app calls in from several worker threads at once: open the
        # store and the supervisord client once, whichever thread comes first.
        self._open_lock = threading.Lock()

    # -- plumbing ------------------------------------------------------------------

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
        if self._store is not None:
            self._store.close()

    @property
    def ports(self) -> range:
        return range(self.settings.base_port, self.settings.last_port + 1)

    def _host_sessions(self, without: str | None = None) -> list[Session]:
        return [s for s in self.store.list_sessions(self.settings.host_id) if s.name != without]

    def apply(self, without: str | None = None) -> applier.ApplyResult:
        """Re-render supervisord's config from the store and apply only the difference
        (starting supervisord, and the sessions meant to run, when it was down)."""
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

    def _start_many(self, names: list[str]) -> list[str]:
        """Start runners in small waves, each wave waiting for health, so a boot with
        hundreds of sessions does not start them all on the same second (the same
        function the health monitor uses when supervisord came up on its own)."""
        ports = {s.name: s.port for s in self._host_sessions()}
        targets = [(n, ports[n]) for n in names if n in ports]
        report = start_in_waves(
            self.sup,
            self.paths,
            targets,
            concurrency=self.settings.start_concurrency,
            wait_healthy=self._wait_healthy,
            lock_timeout=self.settings.start_timeout * (len(targets) + 1),
        )
        self._last_start = report
        return report.started

    def _wait_healthy(self, name: str, port: int) -> None:
        deadline = time.monotonic() + self.settings.start_timeout
        polls = 0
        while time.monotonic() < deadline:
            if runner_client.healthy(self.settings.bind, port, timeout=0.5):
                return
            polls += 1
            if polls % 5 == 0:
                info = self.sup.process_info(program_name(name))
                if info is not None and info.state in ("FATAL", "EXITED", "STOPPED"):
                    raise RunnerError(f"{name}'s runner is {info.state}: {self.why_down(name)}")
            time.sleep(0.05)
        raise RunnerError(
            f"{name}'s runner did not answer /health on port {port} within "
            f"{self.settings.start_timeout:g} s: {self.why_down(name)}"
        )

    def why_down(self, name: str) -> str:
        """The best explanation supervisord can give: spawn error, exit status, the last
        lines the runner wrote on stderr."""
        program = program_name(name)
        info = self.sup.process_info(program)
        if info is None:
            return "supervisord has no program for it"
        parts = []
        if info.spawnerr:
            parts.append(info.spawnerr)
        if info.state in ("EXITED", "FATAL", "BACKOFF"):
            status = self.sup.exit_status(info)
            if status is not None:
                parts.append("killed by a signal" if status < 0 else f"exit status {status}")
        lines = [ln for ln in self.sup.tail_stderr(program).splitlines() if ln.strip()]
        if lines:
            parts.append("stderr: " + " | ".join(lines[-3:]))
        return "; ".join(parts) or f"state {info.state}; see `zapvisor logs {name}`"

    # -- reads ---------------------------------------------------------------------

    def list(self) -> list[SessionView]:
        # supervisord first: when this starts it (and the sessions), the store then
        # says what the runners just reported, not what it held before they started
        infos = self._process_infos()
        sessions = self.store.list_sessions(self.settings.host_id)
        return session_views(sessions, infos, self.health(), self.settings.bind)

    def show(self, name: str) -> SessionView:
        self.store.get_session(validate_name(name))  # an unknown name starts nothing
        infos = self._process_infos()
        session = self.store.get_session(name)  # as its runner reports it, once up
        health = self.health()
        return session_views([session], infos, health, self.settings.bind)[0]

    def events(self, name: str | None = None, *, limit: int = 30) -> builtins.list[Event]:
        """The audit trail, newest first: of one session (a deleted one's too), or all.
        A name that never had a session nor an event is SessionNotFound."""
        found = self.store.list_events(validate_name(name) if name else None, limit=limit)
        if name and not found:
            self.store.get_session(name)  # SessionNotFound, as every other command says
        return found

    def alerts(self, *, include_cleared: bool = False, limit: int = 100) -> builtins.list[Alert]:
        """This host's alerts, newest first: the active ones, or the history too.
        Brings supervisord (and so the health monitor that raises them) back if down."""
        self.ensure_up()
        try:
            return self.store.list_alerts(
                self.settings.host_id, active=None if include_cleared else True, limit=limit
            )
        except NotImplementedError:
            raise StoreError(
                f"the {self.store.kind} store does not keep alerts yet; see the health "
                f"monitor's log, {self.paths.logs}/zapvisor-health.log"
            ) from None

    def health(self) -> dict[str, SessionHealth]:
        """The health monitor's records (restarts, exits, why down) for this host; empty
        with a store that does not keep them yet."""
        try:
            return self.store.list_health(self.settings.host_id)
        except NotImplementedError:
            return {}

    def _process_infos(self) -> dict[str, ProcessInfo]:
        self.ensure_up()
        try:
            return self.sup.all_process_info()
        except SupervisorDown:
            return {}

    # -- lifecycle -----------------------------------------------------------------

    def create(self, new: NewSession, *, wait: bool = True) -> SessionView:
        """Insert the session (reserving its port atomically), add its program, start it.

        If the supervisord step fails the session is removed again: a failed create
        leaves nothing behind. If only the runner fails to become healthy, the session
        stays (its status and logs say why) and RunnerError is raised.
        """
        self.paths.ensure()
        self.progress(f"reserving a port for {new.name}")
        with applier.apply_lock(self.paths):
            session = self._insert(new)
        self.progress(f"adding program {program_name(new.name)} on port {session.port}")
        try:
            self.apply()
        except ZapvisorError:
            self._undo_create(new.name)
            raise
        failure = self._last_start.failed.get(new.name)
        if failure and wait:
            raise RunnerError(
                f"session {new.name} was created on port {session.port} but its runner is not "
                f"healthy: {failure}"
            )
        return self.show(new.name)

    def _insert(self, new: NewSession) -> Session:
        """The row and its port, with the session's secrets written first: a create
        killed at any point leaves either no row, or a row whose token works (a later
        `apply` adds and starts its program). Under the apply lock, so no other create
        on this host writes the same name's files meanwhile."""
        with contextlib.suppress(SessionNotFound):
            self.store.get_session(new.name)
            raise SessionExists(f"a session named {new.name!r} already exists")
        token = apitoken.new_token()
        apitoken.save_token(self.paths, new.name, token)
        webhooks.save_secret(self.paths, new.name, webhooks.new_secret())
        try:
            return self.store.create_session(
                new,
                host=self.settings.host_id,
                ports=self.ports,
                exclude_ports=busy_ports(self.ports, self.settings.bind),
                max_sessions=self.settings.max_sessions,
                actor=self.actor,
                api_token_hash=apitoken.hash_token(token),
            )
        except ZapvisorError as exc:
            self.paths.api_token_file(new.name).unlink(missing_ok=True)
            webhooks.secret_file(self.paths, new.name).unlink(missing_ok=True)
            if isinstance(exc, PortsExhausted) and exc.busy:
                held = ", ".join(str(who_holds(p)) for p in exc.busy[:5])
                raise PortsExhausted(f"{exc.message} ({held})", exc.busy) from None
            raise

    def _undo_create(self, name: str) -> None:
        with contextlib.suppress(ZapvisorError):
            self.store.delete_session(name, actor=self.actor)
        self.paths.api_token_file(name).unlink(missing_ok=True)
        webhooks.secret_file(self.paths, name).unlink(missing_ok=True)
        with contextlib.suppress(ZapvisorError):
            self.apply()

    def _set_desired(self, name: str, desired: DesiredState, action: str) -> Session:
        return self.store.update_session(
            name, {"desired_state": desired}, actor=self.actor, action=action
        )

    def _ensure_program(self, name: str) -> None:
        """Make sure supervisord runs and has the session's current program entry, and
        that the runner starts with the settings of now (`runtime.env`)."""
        self.ensure_up()
        applier.write_runtime_env(self.paths, self.settings)
        program = program_name(name)
        if self.sup.process_info(program) is None:
            self.apply()
        elif program in applier.deferred(self.paths):
            with applier.apply_lock(self.paths):
                applier.refresh_program(self.paths, self.sup, program)

    def start(self, name: str) -> SessionView:
        session = self._set_desired(validate_name(name), DesiredState.RUNNING, "start")
        self._ensure_program(name)
        self.sup.start(program_name(name), wait=False)
        self._wait_healthy(name, session.port)
        return self.show(name)

    def stop(self, name: str) -> SessionView:
        self._set_desired(validate_name(name), DesiredState.STOPPED, "stop")
        self._ensure_program(name)
        self.sup.stop(program_name(name), wait=True)
        return self.show(name)

    def restart(self, name: str) -> SessionView:
        session = self._set_desired(validate_name(name), DesiredState.RUNNING, "restart")
        self._ensure_program(name)
        self.sup.stop(program_name(name), wait=True)
        self.sup.start(program_name(name), wait=False)
        self._wait_healthy(name, session.port)
        return self.show(name)

    def configure(self, name: str, changes: dict[str, object]) -> SessionView:
        """Change a session's config (description, webhook_url, ai_config,
        timing_config), validated with the same rules as create. The runner reads
        its config from the store, so no restart is needed."""
        current = self.store.get_session(validate_name(name))
        fields = SessionFields.model_validate(
            current.model_dump(include=set(SessionFields.model_fields)) | changes
        )
        update = {k: getattr(fields, k) for k in changes}
        if update:
            self.store.update_session(name, update, actor=self.actor, action="configure")
        return self.show(name)

    def delete(self, name: str, *, purge: bool = False) -> Session:
        """Remove the row (freeing the port), then the program, then the session's
        secrets. With ``purge`` its auth in `tokens/<name>/` and its logs go too.

        The store comes first: it is the step most likely to refuse (a read-only or
        full disk, a store that is down), and when it does nothing has changed, the
        runner still runs. Once the row is gone, supervisord follows it: if that step
        fails, the next `zapvisor apply` (any create or delete) finishes the job."""
        session = self.store.get_session(validate_name(name))
        self.ensure_up()
        self.store.delete_session(name, actor=self.actor)
        self.progress(f"removing program {program_name(name)}")
        try:
            self.apply()
        except ZapvisorError as exc:
            raise SupervisorError(
                f"session {name} is deleted from the store, but its program could not be "
                f"removed: {exc}; `zapvisor apply` removes it"
            ) from None
        self.paths.api_token_file(name).unlink(missing_ok=True)
        webhooks.secret_file(self.paths, name).unlink(missing_ok=True)
        if purge:
            shutil.rmtree(self.paths.token_dir(name), ignore_errors=True)
            for log in self.paths.log_files(name):
                log.unlink(missing_ok=True)
            self.store.add_event(name, "purge", actor=self.actor)
        return session

    def logout(self, name: str) -> SessionView:
        """Unlink the device and delete its auth; the next connection needs a new QR."""
        view = self.show(name)
        self.store.add_event(name, "logout", actor=self.actor)
        if view.process_state in PROCESS_SERVING:
            self._runner_call(view.session, "POST", "/logout")
        else:
            auth = self.paths.token_dir(name)
            if auth.exists():
                shutil.rmtree(auth)
            self.store.set_runtime(
                name, {"phone": None, "connected_at": None, "qr_payload": None}, actor=self.actor
            )
        return self.show(name)

    def sim_scan(self, name: str, wait: float = 10.0) -> SessionView:
        """Make the simulated phone scan the session's current QR; returns once the
        session is connected, or says why it is not."""
        view = self.show(name)
        if view.process_state not in PROCESS_SERVING:
            raise RunnerError(f"session {name} is not running ({view.display_status})")
        self._runner_call(view.session, "POST", "/sim/scan")
        deadline = time.monotonic() + wait
        while (session := self.store.get_session(name)).status != Status.CONNECTED:
            if time.monotonic() > deadline:
                why = f": {session.last_error}" if session.last_error else ""
                raise RunnerError(f"{name} was scanned but is {session.status}{why}")
            time.sleep(0.05)
        return self.show(name)

    def _runner_call(self, session: Session, method: str, path: str) -> object:
        token = apitoken.read_token(self.paths, session.name)
        status, body = runner_client.call(
            self.settings.bind, session.port, path, method=method, token=token
        )
        if status >= 400:
            raise runner_client.refusal(session.name, status, body)
        return body
