"""The operator's failover actions (one door, see orchestrator.py): a planned move, what
moved, the hosts a session could move to, a session's failover switch. The logic is
in moves.py; this is its face on the door."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecosystem import moves
from ecosystem.lease import AuthKind, HostBeat
from ecosystem.names import validate_name
from ecosystem.plumbing import Plumbing
from ecosystem.views import SessionView


class FailoverActions(Plumbing):
    if TYPE_CHECKING:

        def show(self, name: str) -> SessionView: ...  # Lifecycle's

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

    def move_targets(self, name: str) -> list[tuple[HostBeat, str | None]]:
        """The hosts a session could move to, each with why not (None: it can)."""
        return moves.targets(self.store, validate_name(name))

    def moved(self, host: str | None = None, limit: int = 50) -> list[moves.Moved]:
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
