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

from ecosystem import apitoken, moves, runner_client, webhooks
from ecosystem.boot import StartReport, start_in_waves
from ecosystem.errors import (
    PortsExhausted,
    RunnerError,
    SchemaMissing,
    StoreError,
    ZapvisorError,
)
from ecosystem.health.model import Alert, SessionHealth
from ecosystem.lease import AuthKind, HostBeat, LeaseInfo
from ecosystem.models import NewSession, Session, SessionFields
from ecosystem.names import program_name, validate_name
from ecosystem.paths import StatePaths
from ecosystem.ports import busy_ports, who_holds
from ecosystem.settings import Settings
from ecosystem.states import PROCESS_SERVING, DesiredState
from ecosystem.store import Store, open_store
from ecosystem.supctl import apply as applier
from ecosystem.supctl import daemon
from ecosystem.supctl.rpc import ProcessInfo, Supervisor, SupervisorDown
from ecosystem.views import SessionView

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
            parts.append(f"exit status {info.exitstatus}")
        lines = [ln for ln in self.sup.tail_stderr(program).splitlines() if ln.strip()]
        if lines:
            parts.append("stderr: " + " | ".join(lines[-3:]))
        return "; ".join(parts) or f"state {info.state}; see `zapvisor logs {name}`"

    # -- reads ---------------------------------------------------------------------

    def list(self) -> list[SessionView]:
        sessions = self.store.list_sessions(self.settings.host_id)
        infos = self._process_infos()
        health = self.health()
        return [
            SessionView(s, infos.get(program_name(s.name)), health.get(s.name)) for s in sessions
        ]

    def show(self, name: str) -> SessionView:
        session = self.store.get_session(validate_name(name))
        info = self._process_infos().get(program_name(name))
        return SessionView(session, info, self.health().get(name), self._lease(name))

    def _lease(self, name: str) -> LeaseInfo | None:
        try:
            return self.store.lease_info(name)
        except (NotImplementedError, SchemaMissing):
            return None

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
        new = new.model_copy(
            update={"auth": moves.choose_auth(self.store.kind, new.connector, new.auth)}
        )
        token = apitoken.new_token()
        self.progress(f"reserving a port for {new.name}")
        try:
            session = self.store.create_session(
                new,
                host=self.settings.host_id,
                ports=self.ports,
                exclude_ports=busy_ports(self.ports, self.settings.bind),
                max_sessions=self.settings.max_sessions,
                actor=self.actor,
                api_token_hash=apitoken.hash_token(token),
            )
        except PortsExhausted as exc:
            if exc.busy:
                held = ", ".join(str(who_holds(p)) for p in exc.busy[:5])
                raise PortsExhausted(f"{exc.message} ({held})", exc.busy) from None
            raise
        apitoken.save_token(self.paths, new.name, token)
        webhooks.save_secret(self.paths, new.name, webhooks.new_secret())
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
        """Make sure supervisord runs and has the session's current program entry."""
        self.ensure_up()
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
        """Stop and remove the program, then the row (freeing the port). With ``purge``
        the session's auth in `tokens/<name>/` goes too."""
        session = self.store.get_session(validate_name(name))
        self.ensure_up()
        self.progress(f"removing program {program_name(name)}")
        self.apply(without=name)
        self.store.delete_session(name, actor=self.actor)
        self.paths.api_token_file(name).unlink(missing_ok=True)
        webhooks.secret_file(self.paths, name).unlink(missing_ok=True)
        if purge:
            shutil.rmtree(self.paths.token_dir(name), ignore_errors=True)
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
            if view.session.auth == AuthKind.STORE:
                with contextlib.suppress(NotImplementedError):
                    self.store.delete_sim_auth(name)
            self.store.set_runtime(
                name, {"phone": None, "connected_at": None, "qr_payload": None}, actor=self.actor
            )
        return self.show(name)

    def sim_scan(self, name: str) -> SessionView:
        """Make the simulated phone scan the session's current QR."""
        view = self.show(name)
        if view.process_state not in PROCESS_SERVING:
            raise RunnerError(f"session {name} is not running ({view.display_status})")
        self._runner_call(view.session, "POST", "/sim/scan")
        return view

    def _runner_call(self, session: Session, method: str, path: str) -> object:
        token = apitoken.read_token(self.paths, session.name)
        status, body = runner_client.call(
            self.settings.bind, session.port, path, method=method, token=token
        )
        if status >= 400:
            error = body.get("error") if isinstance(body, dict) else body
            raise RunnerError(f"{session.name}: {error} (HTTP {status})")
        return body

    # -- failover and planned moves (ecosystem/moves.py) -------------------------------

    def move(self, name: str, to: str, *, timeout: float | None = None) -> moves.MoveResult:
        """Move a session to another host: stopped there, handed over, started here, same
        phone, no QR. Refused when the host is unknown, silent or full, or the auth is
        local."""
        return moves.move(
            self.store,
            validate_name(name),
            to,
            actor=self.actor,
            timeout=timeout if timeout is not None else moves.move_timeout(self.settings),
            progress=self.progress,
        )

    def move_targets(self, name: str) -> builtins.list[tuple[HostBeat, str | None]]:
        """The hosts a session could move to, each with why not (None: it can)."""
        return moves.targets(self.store, validate_name(name))

    def moved(self, host: str | None = None, limit: int = 50) -> builtins.list[moves.Moved]:
        """What moved, when and why (newest first), from or to ``host`` when given."""
        return moves.history(self.store, host, limit)

    def set_failover(
        self, name: str, *, auth: AuthKind | None = None, failover: bool | None = None
    ) -> SessionView:
        """Switch failover on or off, or change where the auth lives (while unlinked)."""
        session = self.store.get_session(validate_name(name))
        if auth is not None:
            moves.choose_auth(self.store.kind, session.connector, auth)
        self.store.set_failover(name, auth=auth, failover=failover, actor=self.actor)
        return self.show(name)
