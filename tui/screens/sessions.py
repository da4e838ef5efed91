"""Home: the host header, the live sessions table, a filter, marks for bulk actions."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual import on
from textual.app import ComposeResult
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static

from ecosystem.liveview import Snapshot
from ecosystem.views import SessionView
from tui.action_table import BY_NAME, bindings
from tui.format import shown_status
from tui.widgets.banner import DegradedBanner
from tui.widgets.host_header import HostHeader
from tui.widgets.key_bar import KeyBar
from tui.widgets.sessions_table import SessionsTable

if TYPE_CHECKING:
    from tui.app import ZapvisorApp


def matches(view: SessionView, needle: str) -> bool:
    """The filter: a piece of the name, the status shown, the phone number, or the
    host."""
    needle = needle.strip().lower()
    if not needle:
        return True
    return (
        needle in view.name
        or needle in shown_status(view).lower()
        or needle in (view.session.phone or "")
        or needle in view.session.host.lower()
    )


class SessionsScreen(Screen[None]):
    BINDINGS = bindings("sessions")

    filter_text: reactive[str] = reactive("", init=False)

    def __init__(self) -> None:
        super().__init__()
        self.marks: set[str] = set()

    @property
    def zv(self) -> ZapvisorApp:
        return cast("ZapvisorApp", self.app)

    @property
    def table(self) -> SessionsTable:
        return self.query_one(SessionsTable)

    @property
    def current_session(self) -> str | None:
        return self.table.highlighted

    def compose(self) -> ComposeResult:
        yield HostHeader(id="host")
        yield DegradedBanner(id="degraded")
        yield Input(placeholder="filter: name, status, phone or host", id="filter", compact=True)
        yield SessionsTable(id="sessions")
        yield Static("", id="empty")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#filter").display = False
        self.watch(self.app, "snapshot", self._show)
        self.watch(self.app, "degraded", self._degraded)
        self.watch(self.app, "booting", lambda _booting: self._show(self.zv.snapshot))
        self.watch(self.table, "scroll_y", self._scrolled, init=False)
        self.table.focus()

    def _scrolled(self, _y: float) -> None:
        """Rows came on screen: shown as of the last refresh at once, and read at every
        refresh from the next one (their CPU and RSS)."""
        self.table.scrolled()
        self.zv.show_rows(self.table.on_screen())

    def _degraded(self, message: str) -> None:
        self.query_one(DegradedBanner).message = message

    def _show(self, snap: Snapshot | None) -> None:
        self.query_one(HostHeader).show(snap, booting=self.zv.booting)
        if snap is None:
            return
        visible = [v for v in snap.views if matches(v, self.filter_text)]
        self.marks &= {v.name for v in visible}  # never act on a row you cannot see
        self.table.show(snap, visible, self.marks)
        self.zv.show_rows(self.table.on_screen())
        empty = self.query_one("#empty", Static)
        if visible:
            empty.display = False
        else:
            empty.display = True
            empty.update(
                f"no session matches “{self.filter_text}” (escape clears the filter)"
                if snap.views
                else "no sessions yet: press n to create one"
            )

    def watch_filter_text(self) -> None:
        self._show(self.zv.snapshot)

    # -- keys ----------------------------------------------------------------------------

    def targets(self) -> list[str]:
        """The marked rows (top to bottom), or else the highlighted one."""
        if self.marks:
            return [n for n in self.table.names if n in self.marks]
        current = self.table.highlighted
        return [current] if current else []

    def action_act(self, verb: str) -> None:
        if BY_NAME[verb].bulk:
            self.zv.request_action(verb, self.targets(), then=self._clear_marks)
        else:
            self.zv.request_action(verb, [n for n in [self.table.highlighted] if n])

    def _clear_marks(self) -> None:
        if self.marks:
            self.marks.clear()
            self._show(self.zv.snapshot)

    def show_host(self, host: str) -> None:
        """Only this host's sessions (the filter, which `escape` clears)."""
        box = self.query_one("#filter", Input)
        box.display = True
        box.value = host
        self.filter_text = host
        self.table.focus()

    def action_open(self) -> None:
        if name := self.table.highlighted:
            self.zv.open_session(name)

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_qr(self) -> None:
        if name := self.table.highlighted:
            self.zv.open_session(name, "qr")

    def action_logs(self) -> None:
        if name := self.table.highlighted:
            self.zv.open_session(name, "details", focus_log=True)

    def action_move(self) -> None:
        if name := self.table.highlighted:
            self.zv.move_elsewhere(name)

    def action_mark(self) -> None:
        name = self.table.highlighted
        if name is None:
            return
        self.marks ^= {name}
        self._show(self.zv.snapshot)
        self.table.action_cursor_down()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.table.focus()
        if not self.filter_text:
            self.query_one("#filter").display = False

    def action_clear(self) -> None:
        box = self.query_one("#filter", Input)
        if box.display:
            box.value = ""
            box.display = False
            self.table.focus()
        else:
            self._clear_marks()
