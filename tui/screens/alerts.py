"""`a`: the health monitor's alerts, the raised ones first, then those cleared in the
last day; the highlighted one in full underneath, `enter` opens its session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Static

from ecosystem.errors import ZapvisorError
from ecosystem.health.model import Alert, Severity
from ecosystem.liveview import Snapshot
from tui.widgets.banner import DegradedBanner
from tui.widgets.key_bar import KeyBar

if TYPE_CHECKING:
    from tui.app import ZapvisorApp

COLUMNS = ("RAISED", "STATE", "SESSION", "MESSAGE")


def _local(moment: datetime) -> str:
    return moment.astimezone().strftime("%m-%d %H:%M")


def _state(alert: Alert) -> Text:
    if alert.cleared_at is not None:
        return Text(f"cleared {alert.cleared_at.astimezone():%H:%M}", style="dim")
    critical = alert.severity == Severity.CRITICAL
    return Text(str(alert.severity), style="bold red" if critical else "bold yellow")


def ordered(alerts: list[Alert]) -> list[Alert]:
    """Raised ones first, each group newest first (the store's order)."""
    return [a for a in alerts if a.active] + [a for a in alerts if not a.active]


class AlertsTable(DataTable[str | Text]):
    BINDINGS = [Binding("enter", "select_cursor", "open its session")]


class AlertsScreen(Screen[None]):
    BINDINGS = [
        Binding("escape,a", "app.pop_screen", "back"),
        Binding("question_mark", "app.help", "help", key_display="?"),
    ]

    @dataclass
    class AlertsRead(Message):
        alerts: list[Alert] | None
        """None when the store keeps no alerts."""
        error: str | None = None

    def __init__(self) -> None:
        super().__init__()
        self.alerts: list[Alert] = []
        self._active: frozenset[int] | None = None
        self._loaded = False

    @property
    def zv(self) -> ZapvisorApp:
        return cast("ZapvisorApp", self.app)

    def compose(self) -> ComposeResult:
        yield Static("alerts", id="title")
        yield DegradedBanner(id="degraded")
        yield AlertsTable(id="alerts", cursor_type="row", zebra_stripes=False)
        yield Static("reading the alerts…", id="detail")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one(AlertsTable).add_columns(*COLUMNS)
        self.watch(self.app, "snapshot", self._changed)
        self.watch(self.app, "degraded", self._degraded)
        self.query_one(AlertsTable).focus()

    def _degraded(self, message: str) -> None:
        self.query_one(DegradedBanner).message = message

    def _changed(self, snap: Snapshot | None) -> None:
        """Read the history again when the set of raised alerts changed (a raise or a
        clear), not on every refresh."""
        active = frozenset(a.id for a in snap.alerts) if snap and snap.alerts is not None else None
        if not self._loaded or active != self._active:
            self._loaded, self._active = True, active
            self._load()

    @work(thread=True, exclusive=True, group="alerts", exit_on_error=False)
    def _load(self) -> None:
        try:
            self.post_message(self.AlertsRead(self.zv.poller.alert_history()))
        except ZapvisorError as exc:
            self.post_message(self.AlertsRead([], error=str(exc)))

    def on_alerts_screen_alerts_read(self, message: AlertsRead) -> None:
        table = self.query_one(AlertsTable)
        detail = self.query_one("#detail", Static)
        if message.error:
            detail.update(Text(f"cannot read the alerts: {message.error}", style="bold red"))
            return
        if message.alerts is None:
            detail.update(
                f"the {self.zv.orch.settings.store_kind} store keeps no alerts yet; "
                "see logs/zapvisor-health.log"
            )
            return
        current = self._highlighted()
        self.alerts = ordered(message.alerts)
        table.clear()
        for alert in self.alerts:
            table.add_row(
                _local(alert.raised_at),
                _state(alert),
                alert.session_name or "-",
                alert.message,
                key=str(alert.id),
            )
        raised = sum(1 for a in self.alerts if a.active)
        self.query_one("#title", Static).update(
            Text.assemble(
                ("alerts", "bold"),
                f"  {raised} raised, {len(self.alerts) - raised} cleared in the last 24 h",
            )
        )
        ids = [a.id for a in self.alerts]
        if current is not None and current.id in ids:
            table.move_cursor(row=ids.index(current.id), animate=False)
        self._describe()

    def _highlighted(self) -> Alert | None:
        table = self.query_one(AlertsTable)
        if not self.alerts or not table.row_count:
            return None
        row = table.cursor_row
        return self.alerts[row] if 0 <= row < len(self.alerts) else None

    @on(DataTable.RowHighlighted)
    def _describe(self) -> None:
        detail = self.query_one("#detail", Static)
        alert = self._highlighted()
        if alert is None:
            detail.update("no alerts raised or cleared in the last 24 h")
            return
        text = Text(alert.message, style="bold")
        text.append(f"\n{alert.severity} {alert.kind}, raised {_local(alert.raised_at)}")
        if alert.cleared_at is not None:
            text.append(f", cleared {_local(alert.cleared_at)}")
        if alert.session_name:
            text.append(f" · enter opens {alert.session_name}", style="dim")
        detail.update(text)

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        alert = self._highlighted()
        if alert is not None and alert.session_name:
            snap = self.zv.snapshot
            if snap is not None and snap.view(alert.session_name) is None:
                self.notify(f"{alert.session_name} no longer exists", markup=False)
                return
            self.zv.open_session(alert.session_name)
