"""The live sessions table: one row per session, updated in place cell by cell.

Refreshing only the cells whose text changed keeps the cursor, the scroll position
and the marks where the operator left them, and costs little at hundreds of rows.
Rows are rebuilt only when the set of rows changes (a create, a delete, a filter).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from ecosystem.monitor import Snapshot
from ecosystem.views import SessionView, age, since
from tui.format import STATUS_STYLES, percent, size

COLUMNS = (
    ("name", "NAME"),
    ("status", "STATUS"),
    ("port", "PORT"),
    ("pid", "PID"),
    ("up", "UPTIME"),
    ("rst", "RST"),
    ("cpu", "CPU%"),
    ("rss", "RSS"),
    ("phone", "PHONE"),
    ("active", "ACTIVE"),
)
_RIGHT = frozenset({"port", "pid", "up", "rst", "cpu", "rss", "active"})
MARK = "●"


STATUS_WIDTH = 12
"""phone_disconnected is cut to fit 80 columns; the session screen shows it whole."""


def _short(status: str) -> str:
    return status if len(status) <= STATUS_WIDTH else status[: STATUS_WIDTH - 1] + "…"


def row_texts(view: SessionView, snap: Snapshot, marked: bool) -> tuple[str, ...]:
    """The plain text of each cell, in COLUMNS order (marks included)."""
    proc = snap.proc(view)
    restarts = snap.restarts.get(view.name, 0)
    return (
        (MARK if marked else " ") + view.name,
        _short(view.display_status),
        str(view.session.port),
        str(view.pid or "-"),
        age(view.uptime),
        str(restarts) if restarts else "-",
        percent(proc.cpu_percent) if proc else "-",
        size(proc.rss) if proc else "-",
        view.session.phone or "-",
        since(view.session.last_activity_at, snap.taken_at),
    )


def _cell(column: str, value: str) -> Text:
    # One leading space is the gap between columns (cell padding is 0 so that ten
    # columns fit 80 cells).
    if column == "name":
        text = Text(" ")
        text.append(value[0], style="bold yellow")
        text.append(value[1:], style="bold")
        return text
    if column == "status":
        full = "phone_disconnected" if value.endswith("…") else value
        return Text(" " + value, style=STATUS_STYLES.get(full, ""))
    return Text(" " + value, justify="right" if column in _RIGHT else "left")


class SessionsTable(DataTable[Text]):
    BINDINGS = [Binding("enter", "select_cursor", "open")]
    DEFAULT_CSS = """
    SessionsTable {
        height: 1fr;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", cell_padding=0, zebra_stripes=False)
        self._shown: dict[str, tuple[str, ...]] = {}

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(
                Text(" " + label, justify="right" if key in _RIGHT else "left"), key=key
            )
        self.fixed_columns = 1

    @property
    def highlighted(self) -> str | None:
        """The session under the cursor."""
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        return str(key.value) if key.value is not None else None

    @property
    def names(self) -> list[str]:
        """The rows shown, top to bottom."""
        return list(self._shown)

    def show(self, snap: Snapshot, views: Sequence[SessionView], marks: Collection[str]) -> None:
        rows = {v.name: row_texts(v, snap, v.name in marks) for v in views}
        if list(rows) != list(self._shown):
            self._rebuild(rows)
            return
        for name, texts in rows.items():
            old = self._shown[name]
            for (column, _label), new, was in zip(COLUMNS, texts, old, strict=True):
                if new != was:
                    self.update_cell(name, column, _cell(column, new), update_width=True)
        self._shown = rows

    def _rebuild(self, rows: dict[str, tuple[str, ...]]) -> None:
        current, index = self.highlighted, self.cursor_row
        self.clear()
        for name, texts in rows.items():
            cells = [_cell(column, t) for (column, _label), t in zip(COLUMNS, texts, strict=True)]
            self.add_row(*cells, key=name)
        self._shown = rows
        if not rows:
            return
        names = list(rows)
        row = names.index(current) if current in rows else min(index, len(names) - 1)
        self.move_cursor(row=max(row, 0), animate=False)
