"""Creating, starting, stopping, restarting, configuring, logging out and deleting a
session: the actions that change what runs."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import time

from ecosystem import apitoken, moves, shared_secrets, webhook_events
from ecosystem.bot_access import bot_facts
from ecosystem.errors import (
    PortsExhausted,
    RunnerError,
    SchemaMissing,
    SessionExists,
    SessionNotFound,
    StoreUnsupported,
    SupervisorError,
    ZapvisorError,
)
from ecosystem.fleet.routing import call_on_host, routed
from ecosystem.lease import AuthKind, LeaseInfo
from ecosystem.models import NewSession, SessionFields
from ecosystem.names import program_name, validate_name
from ecosystem.plumbing import Plumbing
from ecosystem.ports import busy_ports, who_holds
from ecosystem.session import Session
from ecosystem.states import PROCESS_SERVING, DesiredState, Status
from ecosystem.views import SessionView


class Lifecycle(Plumbing):
    def place(self, name: str) -> str:
        """Where a new session goes (this host; fleet.placement overrides it)."""
        return self.host_id

    def check_host(self, host: str) -> None:
        """Refuse a host this control side does not know (fleet.placement overrides it)."""

    @routed
    def show(self, name: str) -> SessionView:
        """One session, its row joined with supervisord's facts, the monitor's and, while
        its runner is down, whoever holds its port: one getProcessInfo and one health
        record, whatever the number of sessions."""
        self.store.get_session(validate_name(name))  # an unknown name starts nothing
        view = self._views(lambda: [self.store.get_session(name)], one=name)[0]
        bot, key = bot_facts(self, view.session)
        return dataclasses.replace(view, lease=self._lease(name), bot=bot, ai_key=key)

    def _lease(self, name: str) -> LeaseInfo | None:
        try:
            return self.store.lease_info(name)
        except (StoreUnsupported, SchemaMissing):
            return None

    def create(self, new: NewSession, *, wait: bool = True, host: str | None = None) -> SessionView:
        """Insert the session (reserving its port atomically), add its program, start it,
        on ``host`` (by default, the fleet's host with the most room: ``place``).

        If the supervisord step fails the session is removed again: a failed create
        leaves nothing behind. If only the runner fails to become healthy, the session
        stays (its status and logs say why) and RunnerError is raised.
        """
        target = host or self.place(new.name)
        if target != self.host_id:
            self.check_host(target)
            args = {"wait": wait, "host": target}
            view: SessionView = call_on_host(self, target, Lifecycle.create, (new,), args)
            return view
        from ecosystem.supctl import apply as applier

        self.paths.ensure()
        new = new.model_copy(
            update={"auth": moves.choose_auth(self.store.kind, new.connector, new.auth)}
        )
        self.progress(f"reserving a port for {new.name}")
        with applier.apply_lock(self.paths):
            session = self._insert(new)
        self.progress(f"adding program {program_name(new.name)} on port {session.port}")
        try:
            self.apply()
        except ZapvisorError:
            self._undo_create(new.name)
            raise
        failure = self._start_failures().get(new.name)
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
        secret = webhook_events.new_secret()
        webhook_events.save_secret(self.paths, new.name, secret)
        try:
            session = self.store.create_session(
                new,
                host=self.host_id,
                ports=self.ports,
                exclude_ports=busy_ports(self.ports, self.settings.bind),
                max_sessions=self.settings.max_sessions,
                actor=self.actor,
                api_token_hash=apitoken.hash_token(token),
            )
        except ZapvisorError as exc:
            self.paths.api_token_file(new.name).unlink(missing_ok=True)
            webhook_events.secret_file(self.paths, new.name).unlink(missing_ok=True)
            if isinstance(exc, PortsExhausted) and exc.busy:
                held = ", ".join(str(who_holds(p)) for p in exc.busy[:5])
                raise PortsExhausted(f"{exc.message} ({held})", exc.busy) from None
            raise
        if session.auth == AuthKind.STORE:
            # a host that claims the session later signs its webhooks with the same secret
            shared_secrets.share(self.store, new.name, secret)
        return session

    def _undo_create(self, name: str) -> None:
        with contextlib.suppress(ZapvisorError):
            self.store.delete_session(name, actor=self.actor)
        self.paths.api_token_file(name).unlink(missing_ok=True)
        webhook_events.secret_file(self.paths, name).unlink(missing_ok=True)
        with contextlib.suppress(ZapvisorError):
            self.apply()

    def _set_desired(self, name: str, desired: DesiredState, action: str) -> Session:
        return self.store.update_session(
            name, {"desired_state": desired}, actor=self.actor, action=action
        )

    def _ensure_program(self, name: str) -> None:
        """Make sure supervisord runs and has the session's current program entry, and
        that the runner starts with the settings of now (`runtime.env`)."""
        from ecosystem.supctl import statefiles

        self.ensure_up()
        statefiles.write_runtime_env(self.paths, self.settings)
        program = program_name(name)
        if self.sup.process_info(program) is None:
            self.apply()
        elif program in statefiles.deferred(self.paths):
            from ecosystem.supctl import apply as applier  # the renderer: only then

            with applier.apply_lock(self.paths):
                applier.refresh_program(self.paths, self.sup, program)

    @routed
    def start(self, name: str) -> SessionView:
        session = self._set_desired(validate_name(name), DesiredState.RUNNING, "start")
        self._ensure_program(name)
        self._start_one(name, session.port)
        return self.show(name)

    @routed
    def stop(self, name: str) -> SessionView:
        self._set_desired(validate_name(name), DesiredState.STOPPED, "stop")
        self._ensure_program(name)
        self.sup.stop(program_name(name), wait=True)
        return self.show(name)

    @routed
    def restart(self, name: str) -> SessionView:
        session = self._set_desired(validate_name(name), DesiredState.RUNNING, "restart")
        self._ensure_program(name)
        self.sup.stop(program_name(name), wait=True)
        self._start_one(name, session.port)
        return self.show(name)

    @routed
    def configure(self, name: str, changes: dict[str, object]) -> SessionView:
        """Change a session's config (description, webhook_url, ai_config,
        timing_config), validated with the same rules as create. The runner reads
        its config from the store, so no restart is needed."""
        self.store.get_session(validate_name(name))
        # Only what changes is checked: a field saved before its rules existed (an
        # ai_config from an older version) must not block changing another one.
        fields = SessionFields.model_validate(changes)
        update = {k: getattr(fields, k) for k in changes}
        if update:
            self.store.update_session(name, update, actor=self.actor, action="configure")
        return self.show(name)

    @routed
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
        webhook_events.secret_file(self.paths, name).unlink(missing_ok=True)
        if purge:
            shutil.rmtree(self.paths.token_dir(name), ignore_errors=True)
            for log in self.paths.log_files(name):
                log.unlink(missing_ok=True)
            self.store.add_event(name, "purge", actor=self.actor)
        if self._forget_device(session):
            self.progress(f"removed device {session.device_jid} from whatsmeow's tables")
        return session

    def _forget_device(self, session: Session) -> str | None:
        """A store-auth neonize session's device in whatsmeow's tables, which no row
        names any more (whatsmeow_devices.forget_session_device)."""
        from ecosystem.whatsmeow_devices import forget_session_device

        url = self.settings.database_url
        return forget_session_device(session, url.get_secret_value() if url else None)

    @routed
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
                with contextlib.suppress(StoreUnsupported):
                    self.store.delete_sim_auth(name)
            # a store-auth neonize session pairs a new device next: its old one goes
            # from whatsmeow's tables, as its local files would
            self._forget_device(view.session)
            cleared = {"phone": None, "connected_at": None, "qr_payload": None, "device_jid": None}
            self.store.set_runtime(name, cleared, actor=self.actor)
        return self.show(name)

    @routed
    def sim_scan(self, name: str, *, wait: float = 0.0) -> SessionView:
        """Make the simulated phone scan the session's current QR; with ``wait``, give
        the session that many seconds to report itself connected."""
        view = self.show(name)
        if view.process_state not in PROCESS_SERVING:
            raise RunnerError(f"session {name} is not running ({view.display_status})")
        self._runner_call(view.session, "POST", "/sim/scan")
        if not wait:
            return view
        deadline = time.monotonic() + wait
        while (session := self.store.get_session(name)).status != Status.CONNECTED:
            if time.monotonic() > deadline:
                why = f": {session.last_error}" if session.last_error else ""
                raise RunnerError(f"{name} was scanned but is {session.status}{why}")
            time.sleep(0.05)
        return self.show(name)
