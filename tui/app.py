"""The terminal app: a live sessions table, a session screen, dialogs; every action is a
core call run in a worker thread. `make_app` builds it for `zapvisor` and the tests."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from textual import work
from textual.app import App
from textual.reactive import var
from textual.timer import Timer
from textual.worker import get_current_worker

from ecosystem.errors import ZapvisorError
from ecosystem.fleet.control import control_side
from ecosystem.lease import AuthKind
from ecosystem.liveview import Poller, Snapshot, notable_changes
from ecosystem.moves import failover_note
from ecosystem.orchestrator import Orchestrator
from ecosystem.pairing import pairing_problem
from ecosystem.session import utcnow
from ecosystem.settings import Settings, load_settings
from ecosystem.store import Store
from tui.actions import SessionActions
from tui.messages import BootFinished, RefreshFailed, SnapshotTaken
from tui.palette import SessionCommands
from tui.screens.sessions import SessionsScreen
from tui.threads import DaemonExecutor

if TYPE_CHECKING:
    from tui.dialogs.create import Created

# The other screens and the dialogs (the session screen brings the QR code's modules,
# help its markdown) are imported when first opened: the sessions table shows sooner.

REFRESH_SECONDS = 1.0
WATCH_SECONDS = 1.0
"""Longest wait for a pushed change before the watcher looks whether the app closed."""
DEGRADED_AFTER = 2.5
"""Seconds a refresh may take before the screen says its data is stale."""
STALE_EVERY = 1.0
"""Seconds between two updates of the stale-data banner's count while a refresh hangs."""
QUIT_GRACE = 0.2
"""Seconds leaving the app gives calls in flight to end (a write on a healthy store takes
milliseconds) before it abandons them."""


class ZapvisorApp(SessionActions):
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses live elsewhere
    TITLE = "zapvisor"
    COMMANDS = App.COMMANDS | {SessionCommands}

    snapshot: var[Snapshot | None] = var(None, init=False, always_update=True)
    """The newest refresh; screens watch it."""
    degraded: var[str] = var("")
    """Why the data on screen is stale ("" when it is fresh)."""
    booting: var[bool] = var(True)

    def __init__(
        self,
        orch: Orchestrator,
        *,
        poller: Poller | None = None,
        refresh_seconds: float = REFRESH_SECONDS,
        degraded_after: float = DEGRADED_AFTER,
        clock: Callable[[], datetime] = utcnow,
        blink: bool = True,
    ) -> None:
        super().__init__()
        self.orch = orch
        self.poller = poller or Poller(orch, clock=clock)
        self.refresh_seconds = refresh_seconds
        self.degraded_after = degraded_after
        self.clock = clock
        self.blink = blink
        """Cursor blink in text fields; off for screenshots."""
        self._refreshing_since: float | None = None
        self._again = False
        self._next_refresh: Timer | None = None
        self._stale_check: Timer | None = None
        self._pss_shown: Counter[str] = Counter()
        orch.pss_sessions = frozenset()  # only the session screens show a PSS
        orch.shown_sessions = frozenset()  # the rows on screen: see show_rows
        self._init_actions()

    def on_mount(self) -> None:
        self.push_screen(SessionsScreen())
        self._boot()
        self.request_refresh()
        if self.orch.pushes_changes:
            self._watch_store()

    # -- the refresh loop: one tick at a time, the next one scheduled when it ends ----

    def request_refresh(self) -> None:
        """Refresh now, or right after the refresh in flight."""
        if self._refreshing_since is not None:
            self._again = True
            return
        if self._next_refresh is not None:
            self._next_refresh.stop()  # one chain of refreshes, however often asked
            self._next_refresh = None
        self._refreshing_since = time.monotonic()
        self._check_staleness_in(self.degraded_after)
        self._refresh()

    @work(thread=True, exclusive=True, group="refresh", exit_on_error=False)
    def _refresh(self) -> None:
        try:
            snap = self.poller.tick()
        except ZapvisorError as exc:
            self.post_message(RefreshFailed(str(exc)))
        except Exception as exc:  # keep refreshing whatever happened; say what it was
            self.post_message(RefreshFailed(f"refresh failed unexpectedly: {exc!r}"))
        else:
            self.post_message(SnapshotTaken(snap))

    @work(thread=True, exclusive=True, group="watch", exit_on_error=False)
    def _watch_store(self) -> None:
        """Refresh as soon as the store says a session changed (another operator's TUI or
        CLI, a runner, another host: LISTEN/NOTIFY on PostgreSQL), not only at the next
        tick. Short waits, so leaving the app is never held up for long."""
        worker = get_current_worker()
        while not worker.is_cancelled:
            try:
                changed = self.orch.wait_for_change(WATCH_SECONDS)
            except ZapvisorError:
                # the refresh tick reports the outage; listen again when it is over
                time.sleep(WATCH_SECONDS)
                continue
            if changed and not worker.is_cancelled:
                with contextlib.suppress(RuntimeError):  # the app closed meanwhile
                    self.call_from_thread(self.request_refresh)

    def on_snapshot_taken(self, message: SnapshotTaken) -> None:
        before, self.snapshot = self.snapshot, message.snapshot
        down = not (message.snapshot.supervisord_up or self.booting)
        self.degraded = (
            "supervisord is not running: ctrl+p, Start supervisord (or start any session)"
            if down
            else ""
        )
        for change in notable_changes(before, message.snapshot):
            self.notify(change.message, severity=change.severity, markup=False, timeout=10)
        self._schedule_next()

    def on_refresh_failed(self, message: RefreshFailed) -> None:
        self.degraded = f"{message.error} — showing the last data; keys still work"
        self._schedule_next()

    def _schedule_next(self) -> None:
        self._refreshing_since = None
        self._check_staleness_in(None)
        delay = 0.05 if self._again else self.refresh_seconds
        self._again = False
        self._next_refresh = self.set_timer(delay, self.request_refresh)

    def _check_staleness_in(self, delay: float | None) -> None:
        """Look whether the refresh in flight is late in ``delay`` seconds (None: not
        at all). A timer per refresh, stopped when it ends in time: an interval timer
        woke the app twice a second for a look that finds nothing nearly always."""
        if self._stale_check is not None:
            self._stale_check.stop()
            self._stale_check = None
        if delay is not None:
            self._stale_check = self.set_timer(delay, self._check_staleness)

    def _check_staleness(self) -> None:
        since = self._refreshing_since
        if since is None:
            return
        waited = time.monotonic() - since
        if waited < self.degraded_after:
            self._check_staleness_in(self.degraded_after - waited)
            return
        snap = self.snapshot
        as_of = snap.taken_at.astimezone().strftime("%H:%M:%S") if snap else "-"
        self.degraded = (
            f"the store or supervisord has not answered for {waited:.0f} s; "
            f"data as of {as_of}; keys still work"
        )
        self._check_staleness_in(STALE_EVERY)  # the seconds counted on screen

    def show_pss(self, name: str, shown: bool) -> None:
        """A session screen opened (or closed): the refreshes read its runner's PSS
        (at the next one, then every 30 s), and no other runner's: a pass over all of
        them (~60 ms at 200) for a table that shows none was most of the idle cost."""
        self._pss_shown[name] += 1 if shown else -1
        self.orch.pss_sessions = frozenset(+self._pss_shown)

    def show_rows(self, names: list[str]) -> None:
        """The sessions table's rows on screen: the refreshes read these runners' CPU and
        RSS every time (and a session screen's, show_pss), the others' every few
        seconds: the table redraws rows off screen only every few refreshes anyway."""
        self.orch.shown_sessions = frozenset(names)

    # -- supervisord -------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="boot", exit_on_error=False)
    def _boot(self) -> None:
        try:
            self.poller.boot()
        except ZapvisorError as exc:
            self.post_message(BootFinished(str(exc)))
        else:
            self.post_message(BootFinished())

    def on_boot_finished(self, message: BootFinished) -> None:
        self.booting = False
        if message.error:
            self.notify(message.error, severity="error", markup=False, timeout=20)
        self.request_refresh()

    def start_supervisord(self) -> None:
        self.booting = True
        self._boot()

    # -- navigation ----------------------------------------------------------------------

    def action_new_session(self) -> None:
        from tui.dialogs.create import CreateForm

        def created(result: Created | None) -> None:
            if result is None:
                return
            if result.warning:
                self.notify(result.warning, severity="warning", markup=False, timeout=15)
            else:
                self.notify(f"created {result.name}", markup=False)
            self.request_refresh()
            self.open_session(result.name)

        snap = self.snapshot
        hosts = [h.host_id for h in snap.host_states()] if snap and snap.fleet else []
        self.push_screen(CreateForm(self.orch, blink=self.blink, hosts=hosts), created)

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        self.push_screen(HelpScreen())

    def action_hosts(self) -> None:
        from tui.screens.hosts import HostsScreen

        if isinstance(self.screen, HostsScreen):
            self.pop_screen()
        else:
            self.push_screen(HostsScreen())

    def show_host(self, host: str) -> None:
        """Back to the sessions, showing this host's only."""
        while not isinstance(self.screen, SessionsScreen) and len(self.screen_stack) > 2:
            self.pop_screen()
        if isinstance(self.screen, SessionsScreen):
            self.screen.show_host(host)

    def action_all_logs(self) -> None:
        from tui.screens.all_logs import AllLogsScreen

        if isinstance(self.screen, AllLogsScreen):
            self.pop_screen()
        else:
            self.push_screen(AllLogsScreen())

    def action_alerts(self) -> None:
        from tui.screens.alerts import AlertsScreen

        if isinstance(self.screen, AlertsScreen):
            self.pop_screen()
        else:
            self.push_screen(AlertsScreen())

    def pair_by_phone(self, name: str) -> None:
        """The pairing dialog, when the session can take a code now; else why not."""
        view = self.snapshot.view(name) if self.snapshot else None
        problem = pairing_problem(view) if view else f"{name}: no such session"
        if problem:
            self.notify(problem, severity="warning", markup=False, timeout=10)
            return
        from tui.dialogs.pair import PairDialog

        self.push_screen(PairDialog(name, blink=self.blink))

    def move_elsewhere(self, name: str) -> None:
        """The move dialog, when the session's auth can move; else why not."""
        view = self.snapshot.view(name) if self.snapshot else None
        if view is None:
            self.notify(f"{name}: no such session", severity="warning", markup=False)
        elif view.session.auth != AuthKind.STORE:
            self.notify(
                f"{name} cannot move: {failover_note(view.session)}",
                severity="warning",
                markup=False,
                timeout=10,
            )
        else:
            from tui.dialogs.move import MoveDialog

            self.push_screen(MoveDialog(name))

    def open_session(self, name: str, mode: str = "auto", *, focus_log: bool = False) -> None:
        from tui.screens.session import SessionScreen

        if isinstance(self.screen, SessionScreen) and self.screen.session_name == name:
            self.screen.mode = mode
            return
        self.push_screen(SessionScreen(name, mode=mode, focus_log=focus_log))


def make_app(
    settings: Settings,
    *,
    store: Store | None = None,
    refresh_seconds: float = REFRESH_SECONDS,
    degraded_after: float = DEGRADED_AFTER,
    blink: bool = True,
) -> ZapvisorApp:
    """The app over this host's door, with links to the fleet's other hosts over SSH
    (``store`` lets a test stand in at the store)."""
    orch = control_side(settings, store)
    return ZapvisorApp(
        orch, refresh_seconds=refresh_seconds, degraded_after=degraded_after, blink=blink
    )


def run_app() -> int:
    """`zapvisor` with no command, on a terminal."""
    from tui.cli import output

    try:
        settings = load_settings()
    except ZapvisorError as exc:
        output.error(str(exc))
        return exc.exit_code
    app = make_app(settings)
    # Our own loop, so that its default executor (where Textual runs thread workers) is
    # one that leaving does not wait for, and so that no asyncio.run joins it.
    executor = DaemonExecutor()
    loop = asyncio.new_event_loop()
    loop.set_default_executor(executor)
    try:
        app.run(loop=loop)  # returns once Textual restored the terminal
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()  # shuts the executor down without waiting
    if executor.wait_idle(QUIT_GRACE):
        app.orch.close()
    # else a worker is stuck in the store or supervisord, holding the store's lock:
    # leave it (tui/threads.py says why that is safe); exit closes its socket.
    return app.return_code or 0
