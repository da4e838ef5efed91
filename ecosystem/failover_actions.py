"""The operator's failover actions (one door, see orchestrator.py): a planned move, what
moved, the hosts a session could move to, a session's failover switch. The logic is
in moves.py; this is its face on the door.

A planned move runs where the operator is. The session's host stops it and hands it
over (``hand_over``, routed to that host) and the target claims and starts it
(``take_over``, on the target): each at once when this side reaches that host (itself,
or through the fleet's links), else at that host's monitor's next check.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ecosystem import moves
from ecosystem.errors import ZapvisorError
from ecosystem.fleet.routing import call_on_host, routed
from ecosystem.lease import AuthKind, Claimed, HostBeat
from ecosystem.names import validate_name
from ecosystem.plumbing import Plumbing
from ecosystem.states import PROCESS_SERVING
from ecosystem.views import SessionView


class FailoverActions(Plumbing):
    if TYPE_CHECKING:

        def show(self, name: str) -> SessionView: ...  # Lifecycle's

        def restart(self, name: str) -> SessionView: ...  # Lifecycle's

    def move(self, name: str, to: str, *, timeout: float | None = None) -> moves.MoveResult:
        """Move a session to another host: stopped there, handed over, started here, same
        phone, no QR. Refused when the host is unknown, silent or full, or the auth is
        local."""
        began = time.monotonic()
        name = validate_name(name)
        session, state = moves.ask(self.store, name, to, actor=self.actor)
        source = session.host
        if state == "requested":
            self.progress(f"asking {source} to stop {name} and hand it over to {to}")
            self._at_once(source, "hands it over", lambda: self.hand_over(name))
        else:
            self.progress(f"{name} is not running on {source}: offered to {to}")
        self._at_once(to, "takes it over", lambda: self._on(to, FailoverActions.take_over, name))
        result = moves.wait_moved(
            self.store,
            session,
            to,
            actor=self.actor,
            began=began,
            timeout=timeout if timeout is not None else moves.move_timeout(self.settings),
            progress=self.progress,
        )
        self._at_once(source, "removes its program", lambda: self._on(source, Plumbing.apply))
        return result

    def _at_once(self, host: str, what: str, step: Callable[[], Any]) -> None:
        """One host's part of a move, now; when that host cannot be asked (no link to
        it, an older zapvisor, an error there), its monitor does it at its next check,
        and the wait that follows tells whether it did."""
        if host != self.host_id and self.links is None:
            self.progress(f"{host} {what} at its monitor's next check")
            return
        try:
            step()
        except ZapvisorError as exc:
            self.progress(f"{host} {what} at its monitor's next check ({exc})")

    @routed
    def hand_over(self, name: str) -> str | None:
        """On the session's host: stop its runner and offer the session to the host a
        planned move asked for (that host's name; None when no move is pending)."""
        from ecosystem.health.failover import Failover  # the monitor's: only for a move

        to = Failover(self.settings, self.store, self.sup).hand_over(name, self.actor)
        if to is not None:
            self.progress(f"{self.host_id} stopped {name} and handed it over to {to}")
        return to

    def _on(self, host: str, method: Callable[..., Any], *args: Any) -> Any:
        """``method`` of the door, run by ``host``: here, or through its link."""
        if host == self.host_id:
            return method(self, *args)
        return call_on_host(self, host, method, args, {})

    def take_over(self, name: str) -> Claimed | None:
        """On the target of a planned move: claim the session offered to this host on a
        port of its own and start it (None when it is not offered here, or not yet)."""
        from ecosystem.health.failover import Failover

        got = Failover(self.settings, self.store, self.sup).claim(validate_name(name), self.actor)
        if got is not None:
            self.progress(f"{self.host_id} took {name} over on port {got.to_port}")
            self.apply()
        return got

    def move_targets(self, name: str) -> list[tuple[HostBeat, str | None]]:
        """The hosts a session could move to, each with why not (None: it can)."""
        return moves.targets(self.store, validate_name(name))

    def moved(self, host: str | None = None, limit: int = 50) -> list[moves.Moved]:
        """What moved, when and why (newest first), from or to ``host`` when given."""
        return moves.history(self.store, host, limit)

    def set_failover(
        self,
        name: str,
        *,
        auth: AuthKind | None = None,
        failover: bool | None = None,
        restart: bool = True,
    ) -> SessionView:
        """Switch failover on or off, or change where the auth lives (while unlinked):
        a running runner is then restarted, unless ``restart`` is False (a fleet file's
        plan restarts it as a step of its own)."""
        session = self.store.get_session(validate_name(name))
        if auth is not None:
            moves.choose_auth(self.store.kind, session.connector, auth)
        self.store.set_failover(name, auth=auth, failover=failover, actor=self.actor)
        view = self.show(name)
        changed = auth is not None and auth != session.auth
        if restart and changed and view.process_state in PROCESS_SERVING:
            # the runner reads where its auth lives when it starts: one waiting for a scan
            # (no phone linked, or the store refused the change) would pair into the old place
            where = "in the store" if auth == AuthKind.STORE else f"in tokens/{name}/"
            self.progress(f"restarting {name}: its auth now lives {where}")
            return self.restart(name)
        return view
