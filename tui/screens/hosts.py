"""`h`: the fleet's hosts: whether each answers (and since when not), how full it is,
its CPU, RAM and disk, and the zapvisor it runs; `enter` shows its sessions only."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Static

from ecosystem import __version__
from ecosystem.hostview import HostReport, HostState
from ecosystem.liveview import Snapshot
from tui.format import size
from tui.widgets.banner import DegradedBanner
from tui.widgets.key_bar import KeyBar

if TYPE_CHECKING:
    from tui.app import ZapvisorApp

COLUMNS = ("HOST", "ANSWERS", "MS", "SESSIONS", "CPU%", "RAM", "DISK", "VERSION")


def host_cells(state: HostState) -> tuple[Text | str, ...]:
    """One row of the hosts table."""
    report = state.report
    stats = report.stats if report else None
    if state.reachable:
        answers = Text("local" if state.local else "yes", style="green")
    else:
        when = state.since.astimezone().strftime("%H:%M:%S") if state.since else "?"
        answers = Text(f"no, since {when}", style="bold red")
    latency = f"{state.latency_ms:.0f}" if state.latency_ms is not None else "-"
    capacity = f"{state.sessions}/{report.max_sessions}" if report else f"{state.sessions}/?"
    version: Text | str = report.version if report else "?"
    if report and report.version != __version__:
        version = Text(f"{report.version} ≠", style="bold yellow")
    name = Text(state.host_id, style="bold" if state.reachable else "dim")
    cells: tuple[Text | str, ...] = (
        name,
        answers,
        latency,
        capacity,
        f"{stats.cpu_percent:.0f}" if stats else "-",
        f"{stats.mem_percent:.0f}%" if stats else "-",
        f"{stats.disk_percent:.0f}%" if stats else "-",
        version,
    )
    return cells


def host_detail(state: HostState) -> Text:
    """The highlighted host in full: why it is silent, its load and memory, a version
    that differs from this one's and what to do about it."""
    text = Text(state.host_id, style="bold")
    report = state.report
    stats = report.stats if report else None
    if not state.reachable:
        text.append(f"  {state.note}", style="bold red")
        if state.error:
            text.append(f": {state.error}", style="red")
    if stats:
        text.append(
            f"\nload {stats.load1:.2f} on {stats.cpu_count} cores · RAM "
            f"{size(stats.mem_used)}/{size(stats.mem_total)} · disk "
            f"{size(stats.disk_used)}/{size(stats.disk_total)}"
        )
        if report and not report.supervisord_up:
            text.append(" · supervisord DOWN", style="bold red")
    if report and report.version != __version__:
        text.append(
            f"\nruns zapvisor {report.version}, this is {__version__}: "
            f"`zapvisor hosts upgrade {state.host_id}`",
            style="yellow",
        )
    text.append("  · enter shows its sessions", style="dim")
    return text


class HostsTable(DataTable[Text | str]):
    BINDINGS = [Binding("enter", "select_cursor", "its sessions")]


class HostsScreen(Screen[None]):
    BINDINGS = [
        Binding("escape,h", "app.pop_screen", "back"),
        Binding("question_mark", "app.help", "help", key_display="?"),
    ]

    @property
    def zv(self) -> ZapvisorApp:
        return cast("ZapvisorApp", self.app)

    def compose(self) -> ComposeResult:
        yield Static("hosts", id="title")
        yield DegradedBanner(id="degraded")
        yield HostsTable(id="hosts", cursor_type="row", zebra_stripes=False)
        yield Static("", id="detail")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one(HostsTable).add_columns(*COLUMNS)
        self.watch(self.app, "snapshot", self._show)
        self.watch(self.app, "degraded", self._degraded)
        self.query_one(HostsTable).focus()

    def _degraded(self, message: str) -> None:
        self.query_one(DegradedBanner).message = message

    @property
    def highlighted(self) -> str | None:
        table = self.query_one(HostsTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return str(key.value) if key.value is not None else None

    def _show(self, snap: Snapshot | None) -> None:
        if snap is None:
            return
        table = self.query_one(HostsTable)
        current = self.highlighted
        states = list(snap.host_states())
        if not states:  # a lone host: the same facts, for this one
            states = [self._lone(snap)]
        keys = [s.host_id for s in states]
        if [str(k.value) for k in table.rows] != keys:
            table.clear()
            for state in states:
                table.add_row(*host_cells(state), key=state.host_id)
        else:
            for state in states:
                for column, cell in zip(table.columns, host_cells(state), strict=True):
                    table.update_cell(state.host_id, column, cell)
        if current in keys:
            table.move_cursor(row=keys.index(current), animate=False)
        up = sum(1 for s in states if s.reachable)
        self.query_one("#title", Static).update(
            Text.assemble(("hosts", "bold"), f"  {up} of {len(states)} answering")
        )
        self._describe(snap)

    def _lone(self, snap: Snapshot) -> HostState:
        report = HostReport(
            host_id=snap.host_id,
            version=__version__,
            taken_at=snap.taken_at,
            supervisord_up=snap.supervisord_up,
            max_sessions=snap.max_sessions,
            base_port=self.zv.orch.settings.base_port,
            procs=snap.procs,
            stats=snap.host,
        )
        return HostState(snap.host_id, report, local=True, sessions=len(snap.views))

    @on(DataTable.RowHighlighted)
    def _highlighted(self) -> None:
        self._describe(self.zv.snapshot)

    def _describe(self, snap: Snapshot | None) -> None:
        detail = self.query_one("#detail", Static)
        name = self.highlighted
        states = {s.host_id: s for s in snap.host_states()} if snap else {}
        if snap is not None and not states:
            states = {snap.host_id: self._lone(snap)}
        state = states.get(name) if name else None
        if state is None:
            detail.update("")
            return
        detail.update(host_detail(state))

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        name = self.highlighted
        if name is not None:
            self.zv.show_host(name)
