"""Every key and command of the app in one table: key, label, help, palette title,
confirmation, past tense, bulk or not, and the core call behind it.

The bindings of the sessions and session screens, the command palette, the help screen
and the confirm dialogs are all derived from this table: a new action is one entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.binding import Binding

from ecosystem.lease import AuthKind
from ecosystem.orchestrator import Orchestrator
from ecosystem.pairing import pairing_problem
from ecosystem.states import PROCESS_UP
from ecosystem.views import SessionView

if TYPE_CHECKING:
    from tui.app import ZapvisorApp

CoreCall = Callable[[Orchestrator, str, bool], str]
"""(orchestrator, session name, purge) → a short result for the notification."""
Opener = Callable[["ZapvisorApp", str], object]
"""What a non-core entry does for one session from the palette."""


@dataclass(frozen=True)
class Ask:
    """The confirmation asked before the action, even for one session."""

    question: str
    """With ``{count}``: "2 sessions"."""
    verb: str
    detail: str = ""
    danger: bool = False
    purge_option: str | None = None


def _always(_view: SessionView | None) -> bool:
    return True


def _running(view: SessionView | None) -> bool:
    return view is not None and view.process_state in PROCESS_UP


def _not_running(view: SessionView | None) -> bool:
    return not _running(view)


def _pairable(view: SessionView | None) -> bool:
    return view is not None and pairing_problem(view) is None


def _movable(view: SessionView | None) -> bool:
    return view is not None and view.session.auth == AuthKind.STORE


def _sim_running(view: SessionView | None) -> bool:
    return _running(view) and view is not None and view.session.connector == "sim"


@dataclass(frozen=True)
class Action:
    name: str
    key: str = ""
    """The key on the screens that list it (see SCREENS); "" for none."""
    label: str = ""
    """The key bar's word."""
    help: str = ""
    """The help screen's line."""
    action: str = ""
    """The Textual action a key runs; session actions run ``act('<name>')``."""
    key_display: str | None = None
    bound: bool = True
    """False when a widget binds the key itself (enter in the table): help only."""
    shown: bool = True
    """Whether the key bar shows it."""
    title: str = ""
    """The palette's title for one session, with ``{name}``; "" keeps it out."""
    palette_help: str = ""
    applies: Callable[[SessionView | None], bool] = _always
    """Whether the palette offers it for a session in that state."""
    opener: Opener | None = None
    call: CoreCall | None = None
    """The core call of a session action (run in a worker, one session at a time)."""
    past: str = ""
    bulk: bool = True
    """Whether it acts on every marked row."""
    ask: Ask | None = None

    def binding(self) -> Binding:
        run = self.action or f"act('{self.name}')"
        return Binding(self.key, run, self.label, show=self.shown, key_display=self.key_display)


def _restart(orch: Orchestrator, name: str, _purge: bool) -> str:
    return f"pid {orch.restart(name).pid}"


def _start(orch: Orchestrator, name: str, _purge: bool) -> str:
    return f"pid {orch.start(name).pid}"


def _stop(orch: Orchestrator, name: str, _purge: bool) -> str:
    orch.stop(name)
    return "stopped"


def _logout(orch: Orchestrator, name: str, _purge: bool) -> str:
    orch.logout(name)
    return "auth removed"


def _delete(orch: Orchestrator, name: str, purge: bool) -> str:
    session = orch.delete(name, purge=purge)
    return f"port {session.port} freed" + (", auth removed" if purge else "")


def _sim_scan(orch: Orchestrator, name: str, _purge: bool) -> str:
    orch.sim_scan(name)
    return "scan sent"


def _replay(orch: Orchestrator, name: str, _purge: bool) -> str:
    n = orch.webhook_report(name, replay=True, limit=0).replayed
    if not n:
        return "no dead-lettered events to replay"
    return f"{n} dead-lettered event{'s' if n != 1 else ''} due again"


def _open(app: ZapvisorApp, name: str) -> None:
    app.open_session(name)


def _open_qr(app: ZapvisorApp, name: str) -> None:
    app.open_session(name, "qr")


def _open_log(app: ZapvisorApp, name: str) -> None:
    app.open_session(name, "details", focus_log=True)


def _pair(app: ZapvisorApp, name: str) -> None:
    app.pair_by_phone(name)


def _move(app: ZapvisorApp, name: str) -> None:
    app.move_elsewhere(name)


ACTIONS: tuple[Action, ...] = (
    # -- session actions: a core call each ----------------------------------------------
    Action(
        "restart", "r", "restart", "restart (a new runner process; the others untouched)",
        title="Restart {name}", palette_help="a new runner process",
        call=_restart, past="restarted",
    ),
    Action(
        "toggle", "s", "start/stop",
        "stop a running session, start a stopped (or parked) one",
    ),
    Action(
        "stop", title="Stop {name}", palette_help="it stays stopped", applies=_running,
        call=_stop, past="stopped",
    ),
    Action(
        "start", title="Start {name}", palette_help="and keep it running",
        applies=_not_running, call=_start, past="started",
    ),
    Action(
        "logout", "x", "logout", "log out: unlink the phone, delete its auth (asks first)",
        title="Log out {name}", palette_help="unlink the phone, delete its auth",
        call=_logout, past="logged out",
        ask=Ask(
            "Log out {count}?", "Log out", danger=True,
            detail="The phone is unlinked and the auth deleted: a new QR scan is needed.",
        ),
    ),
    Action(
        "delete", "d", "delete",
        "delete: remove its program, free its port (asks; can remove auth files)",
        title="Delete {name}", palette_help="remove its program, free its port",
        call=_delete, past="deleted",
        ask=Ask(
            "Delete {count}?", "Delete", danger=True,
            detail="Their programs are removed and their ports freed. With the auth files "
            "removed too, a phone must scan a new QR to use the name again.",
            purge_option="also remove auth files (tokens/<name>/)",
        ),
    ),
    Action(
        "replay", "w", "replay",
        "replay the webhook events that exhausted their retries (dead letters)",
        title="Replay dead webhooks of {name}",
        palette_help="send the dead-lettered events again",
        call=_replay, past="webhooks", bulk=False,
    ),
    Action(
        "sim_scan", title="Simulate a scan of {name}", palette_help="the sim phone scans its QR",
        applies=_sim_running, call=_sim_scan, past="scanned (sim)", bulk=False,
    ),
    # -- the rest: navigation and dialogs -----------------------------------------------
    Action("new", "n", "new", "new session (form)", action="app.new_session"),
    Action(
        "open", "enter", "open", "open the session: QR, facts, config, log", bound=False,
        title="Open {name}", palette_help="QR, facts, config and log", opener=_open,
    ),
    Action(
        "filter", "slash", "filter",
        "filter by name, status, phone or host (`escape` clears)",
        action="filter", key_display="/",
    ),
    Action(
        "mark", "space", "mark",
        "mark a row; `r` `s` `x` `d` then act on every marked row (asks first)",
        action="mark", key_display="space",
    ),
    Action(
        "logs", "l", "logs", "the session's log", action="logs",
        title="Logs of {name}", palette_help="follow its log", opener=_open_log,
    ),
    Action(
        "all_logs", "L", "all logs",
        "every session's log in one stream, in time order (`/` keeps matching lines)",
        action="app.all_logs", key_display="L", shown=False,
    ),
    Action(
        "qr", "q", "QR", "the session's pairing QR", action="qr",
        title="Show the QR of {name}", palette_help="pairing code", opener=_open_qr,
    ),
    Action(
        "alerts", "a", "alerts",
        "alerts: raised by the health monitor, and those cleared in the last day",
        action="app.alerts",
    ),
    Action(
        "hosts", "h", "hosts",
        "the hosts: which answer, sessions of how many, CPU, RAM, disk, version "
        "(`enter` shows one host's sessions)",
        action="app.hosts",
    ),
    Action(
        "help", "question_mark", "help", "this help; `ctrl+q` quits",
        action="app.help", key_display="?",
    ),
    Action(
        "clear", "escape", "clear filter/marks", "clear the filter, then the marks",
        action="clear", shown=False,
    ),
    Action("back", "escape", "back", "back to the sessions", action="app.pop_screen"),
    Action(
        "toggle_qr", "q", "QR/details", "switch between the QR and the details",
        action="toggle_qr",
    ),
    Action(
        "compact_qr", "c", "compact QR",
        "the QR drawn 2x3 modules per cell (Unicode sextants: 31x21 cells, fits 80x24); "
        "`c` again if it looks broken (the font has no sextants): half-blocks",
        action="compact_qr", shown=False,
    ),
    Action(
        "log", "l", "log", "go to the log (scroll up to stop following; `end` follows again)",
        action="logs",
    ),
    Action("edit", "e", "config", "edit the config (JSON checked before saving)", action="edit"),
    Action(
        "pair", "p", "pair by phone",
        "pair by phone number: a code to type on the phone instead of scanning",
        action="pair", title="Pair {name} by phone number",
        palette_help="a code to type on the phone", applies=_pairable, opener=_pair,
    ),
    Action(
        "move", "m", "move",
        "move it to another host of the fleet (auth in the store): same phone, no QR",
        action="move", shown=False, title="Move {name} to another host",
        palette_help="same phone, no new QR", applies=_movable, opener=_move,
    ),
)  # fmt: skip

BY_NAME = {a.name: a for a in ACTIONS}

SCREENS: dict[str, tuple[str, ...]] = {
    "sessions": (
        "new", "open", "restart", "toggle", "logout", "delete", "filter", "mark", "logs",
        "all_logs", "qr", "move", "alerts", "hosts", "help", "clear",
    ),
    "session": (
        "back", "toggle_qr", "compact_qr", "log", "edit", "restart", "toggle", "logout",
        "delete", "pair", "replay", "move", "alerts", "help",
    ),
}  # fmt: skip
"""Each screen's keys, in the order its key bar shows them."""

PALETTE_ORDER = (
    "open", "qr", "logs", "restart", "stop", "start", "logout", "delete", "pair", "replay",
    "move", "sim_scan",
)  # fmt: skip


def bindings(screen: str) -> list[Binding | tuple[str, str] | tuple[str, str, str]]:
    """A screen's BINDINGS (typed the way Textual declares them)."""
    return [a.binding() for name in SCREENS[screen] if (a := BY_NAME[name]).bound]


def key_rows(screen: str) -> Iterator[tuple[str, str]]:
    """(key as shown, what it does) for the help screen."""
    for name in SCREENS[screen]:
        action = BY_NAME[name]
        yield action.key_display or action.key, action.help
