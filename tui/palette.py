"""ctrl+p: every action by name ("restart cliente-001", "new session", …)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from ecosystem.pairing import pairing_problem
from ecosystem.states import PROCESS_UP

if TYPE_CHECKING:
    from tui.app import ZapvisorApp

Command = tuple[str, str, Callable[[], object]]
"""(title, help, callback)"""


def _current(screen: object) -> str | None:
    """The session the operator is looking at: the open one, or the highlighted row."""
    return cast("str | None", getattr(screen, "current_session", None))


def session_commands(app: ZapvisorApp, name: str) -> Iterator[Command]:
    view = app.snapshot.view(name) if app.snapshot else None
    running = view is not None and view.process_state in PROCESS_UP
    act = app.request_action
    yield f"Open {name}", "QR, facts, config and log", partial(app.open_session, name)
    yield f"Show the QR of {name}", "pairing code", partial(app.open_session, name, "qr")
    logs = partial(app.open_session, name, "details", focus_log=True)
    yield f"Logs of {name}", "follow its log", logs
    yield f"Restart {name}", "a new runner process", partial(act, "restart", [name])
    if running:
        yield f"Stop {name}", "it stays stopped", partial(act, "stop", [name])
    else:
        yield f"Start {name}", "and keep it running", partial(act, "start", [name])
    yield f"Log out {name}", "unlink the phone, delete its auth", partial(act, "logout", [name])
    yield f"Delete {name}", "remove its program, free its port", partial(act, "delete", [name])
    if view is not None and pairing_problem(view) is None:
        pair = partial(app.pair_by_phone, name)
        yield f"Pair {name} by phone number", "a code to type on the phone", pair
    if view is not None and view.session.auth == "store":
        move = partial(app.move_elsewhere, name)
        yield f"Move {name} to another host", "same phone, no new QR", move
    replay = partial(act, "replay", [name])
    yield f"Replay dead webhooks of {name}", "send the dead-lettered events again", replay
    if view is not None and view.session.connector == "sim" and running:
        scan = partial(act, "sim_scan", [name])
        yield f"Simulate a scan of {name}", "the sim phone scans its QR", scan


def general_commands(app: ZapvisorApp) -> Iterator[Command]:
    yield "New session", "the create form", app.action_new_session
    yield "Start supervisord", "and the sessions meant to run", app.start_supervisord
    yield "Alerts", "raised by the health monitor, and recently cleared", app.action_alerts
    yield "Keys", "every key and column explained", app.action_help


class SessionCommands(Provider):
    def _all(self, everyone: bool) -> Iterator[Command]:
        app = cast("ZapvisorApp", self.app)
        current = _current(self.screen)
        if current:
            yield from session_commands(app, current)
        yield from general_commands(app)
        filter_rows = getattr(self.screen, "action_filter", None)
        if filter_rows is not None:
            yield "Filter sessions", "by name, status or phone", filter_rows
        if everyone and app.snapshot:
            for view in app.snapshot.views:
                if view.name != current:
                    yield from session_commands(app, view.name)

    async def discover(self) -> Hits:
        for title, help_text, callback in self._all(everyone=False):
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._all(everyone=True):
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
