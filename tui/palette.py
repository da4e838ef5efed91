"""ctrl+p: every action by name ("restart cliente-001", "new session", …)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from tui.action_table import BY_NAME, PALETTE_ORDER

if TYPE_CHECKING:
    from tui.app import ZapvisorApp

Command = tuple[str, str, Callable[[], object]]
"""(title, help, callback)"""


def _current(screen: object) -> str | None:
    """The session the operator is looking at: the open one, or the highlighted row."""
    return cast("str | None", getattr(screen, "current_session", None))


def session_commands(app: ZapvisorApp, name: str) -> Iterator[Command]:
    """The table's actions that apply to this session in its current state."""
    view = app.snapshot.view(name) if app.snapshot else None
    for entry in PALETTE_ORDER:
        action = BY_NAME[entry]
        if not action.applies(view):
            continue
        run: Callable[[], object]
        if action.opener is not None:
            run = partial(action.opener, app, name)
        else:
            run = partial(app.request_action, action.name, [name])
        yield action.title.format(name=name), action.palette_help, run


def general_commands(app: ZapvisorApp) -> Iterator[Command]:
    yield "New session", "the create form", app.action_new_session
    yield "Start supervisord", "and the sessions meant to run", app.start_supervisord
    yield "Alerts", "raised by the health monitor, and recently cleared", app.action_alerts
    yield "All logs", "every session's log in one stream, in time order", app.action_all_logs
    yield "Hosts", "which answer, how full, CPU, RAM, disk, version", app.action_hosts
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
