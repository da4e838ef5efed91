"""The live sessions table: one row per session, updated in place.

Each row is drawn as one pre-aligned line (a single DataTable column) rather than ten
cells: a DataTable re-renders every visible cell after any update, and one refresh a
second touches most rows (uptime, CPU), so ten times fewer cells is most of the app's
idle CPU. Only rows whose text changed are updated, which keeps the cursor, the scroll
position and the marks where the operator left them. Rows are rebuilt only when the
set of rows changes (a create, a delete, a filter).

A DataTable keys its rendered lines on one counter that every cell update bumps, so
one changed row would re-render every row on screen: here a line is keyed on its own
row's last update instead (``_render_line``), and a refresh re-renders only the rows
whose text changed. Rows off screen are neither formatted nor updated but every
``OFFSCREEN_EVERY``-th refresh, or when a scroll brings them on screen (from the last
refresh's data: never older than what the other rows show).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from rich.style import Style
from rich.text import Span, Text
from textual.binding import Binding
from textual.events import Resize
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets.data_table import CellKey, ColumnKey, RowKey

from ecosystem.liveview import Snapshot
from ecosystem.views import SessionView, age, since
from tui.format import STATUS_STYLES, percent, shown_status, size

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
FLEET_COLUMNS = (COLUMNS[0], ("host", "HOST"), *COLUMNS[1:])
"""With more than one host: which host runs it, beside its name."""
_RIGHT = frozenset({"port", "pid", "up", "rst", "cpu", "rss", "active"})
MARK = "●"
SHRINK = (("status", 10), ("phone", 8), ("host", 10), ("name", 14))
"""When a row is wider than the table, these columns are cut (ending in …) in this
order, down to these widths: phone_disconnected reads "phone_disco…" at 80 columns
(the session screen shows it whole), a phone number then gives way to the host's name
(with several hosts), and a long name gives way before any figure."""
GREY = "dim"
"""The rows of a host that does not answer: their last known state, greyed."""

Columns = tuple[tuple[str, str], ...]
ROW = "row"
OFFSCREEN_EVERY = 30
"""Refreshes between two passes over the rows off screen (their text, so the column
widths fit every row); a scroll brings the rows it shows up to date at once."""


def row_texts(view: SessionView, snap: Snapshot, marked: bool) -> tuple[str, ...]:
    """The plain text of each cell, in COLUMNS (FLEET_COLUMNS) order, marks included,
    uncut."""
    proc = snap.proc(view)
    restarts = view.restarts  # the health monitor's count, from the store
    host = (view.session.host,) if snap.fleet else ()
    return (
        (MARK if marked else " ") + view.name,
        *host,
        shown_status(view),
        str(view.session.port),
        str(view.pid or "-"),
        age(view.uptime),
        str(restarts) if restarts else "-",
        percent(proc.cpu_percent) if proc else "-",
        size(proc.rss) if proc else "-",
        view.session.phone or "-",
        since(view.session.last_activity_at, snap.taken_at),
    )


def _widths(
    rows: Collection[tuple[str, ...]], budget: int, columns: Columns = COLUMNS
) -> tuple[int, ...]:
    """Each column's width, the gap before it included, cut to fit ``budget``.

    The name column has no gap: its first cell is the mark slot, blank unless marked."""
    widths = [
        max([len(label) + 1, *(len(texts[i]) + (i > 0) for texts in rows)])
        for i, (_key, label) in enumerate(columns)
    ]
    excess = sum(widths) - budget
    index = {key: i for i, (key, _label) in enumerate(columns)}
    for key, floor in SHRINK:
        if key not in index:
            continue
        i = index[key]
        cut = max(0, min(excess, widths[i] - floor))
        widths[i] -= cut
        excess -= cut
    return tuple(widths)


def _clip(value: str, width: int) -> str:
    return value if len(value) <= width else value[: max(width - 1, 0)] + "…"


def _line(
    texts: Sequence[str],
    widths: Sequence[int],
    header: bool = False,
    columns: Columns = COLUMNS,
    grey: bool = False,
) -> Text:
    # Built as one string and a few style spans: this runs for most rows every second.
    parts = []
    spans = []
    at = 0
    for (column, _label), value, width in zip(columns, texts, widths, strict=True):
        if column == "name":
            shown = _clip(" " + value if header else value, width)
            cell = shown.ljust(width)
            if not header:
                spans.append(Span(at, at + 1, "bold yellow"))
                spans.append(Span(at + 1, at + len(shown), "bold"))
        else:
            shown = _clip(value, width - 1)
            cell = shown.rjust(width) if column in _RIGHT else " " + shown.ljust(width - 1)
            status = STATUS_STYLES.get(value) if column == "status" and not header else None
            if status and not grey:
                spans.append(Span(at + 1, at + 1 + len(shown), status))
        parts.append(cell)
        at += width
    if grey:
        spans = [Span(0, at, GREY)]
    return Text("".join(parts), spans=spans, no_wrap=True, end="")


class SessionsTable(DataTable[Text]):
    BINDINGS = [Binding("enter", "select_cursor", "open")]
    DEFAULT_CSS = """
    SessionsTable {
        height: 1fr;
        scrollbar-size-vertical: 1;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        self._strips: dict[tuple[object, ...], Strip] = {}  # the table's init clears it
        super().__init__(id=id, cursor_type="row", cell_padding=0, zebra_stripes=False)
        self._shown: dict[str, tuple[str, ...]] = {}
        self._grey: set[str] = set()
        self._columns: Columns = COLUMNS
        self._col_widths: tuple[int, ...] = _widths([], self._budget())
        self._ticks = 0
        self._marks: frozenset[str] = frozenset()
        self._row_updates: dict[RowKey, int] = {}
        """Each row's last update (the table's update count then)."""
        self._cell_updates = 0
        self._layout_epoch = 0
        """Bumped when the header or the column widths change: every line again."""
        self._pass_style: Style | None = None
        """The table's style during a rendering pass (see render_lines)."""
        self._latest: tuple[Snapshot, Sequence[SessionView]] | None = None
        """The last refresh shown, for the rows a scroll brings on screen."""
        self._catching_up = False

    def on_mount(self) -> None:
        self.add_column(self._header(), key=ROW)

    def _budget(self) -> int:
        # One column stays free for the scrollbar, even before the rows outgrow the
        # screen, so that the 19th session at 80x24 does not push ACTIVE off the edge.
        return (self.size.width or 80) - 1

    def _header(self) -> Text:
        labels = [label for _key, label in self._columns]
        return _line(labels, self._col_widths, header=True, columns=self._columns)

    def _row(self, name: str, texts: tuple[str, ...], widths: tuple[int, ...]) -> Text:
        return _line(texts, widths, columns=self._columns, grey=name in self._grey)

    def _set_widths(self, widths: tuple[int, ...]) -> None:
        self._col_widths = widths
        self._layout_epoch += 1
        column = self.columns[ColumnKey(ROW)]
        column.label = self._header()
        # Every line is exactly this wide. Set here, the table neither keeps a wider
        # width after a narrowing (it only ever grows it on its own) nor re-measures
        # every row for each row updated.
        column.content_width = sum(widths)

    def on_resize(self, _: Resize) -> None:
        widths = _widths(self._shown.values(), self._budget(), self._columns)
        if widths != self._col_widths and self.columns:
            self._set_widths(widths)
            for name, texts in self._shown.items():
                self.update_cell(name, ROW, self._row(name, texts, widths), update_width=True)

    def update_cell(
        self,
        row_key: RowKey | str,
        column_key: ColumnKey | str,
        value: Text,
        *,
        update_width: bool = False,
    ) -> None:
        super().update_cell(row_key, column_key, value, update_width=update_width)
        self._cell_updates += 1
        key = RowKey(row_key) if isinstance(row_key, str) else row_key
        self._row_updates[key] = self._update_count

    @property
    def rich_style(self) -> Style:
        return self._pass_style or super().rich_style

    def render_lines(self, crop: Region) -> list[Strip]:
        # Each line asks for the table's style, which walks every ancestor's CSS: once
        # a pass is enough.
        self._pass_style = super().rich_style
        try:
            return super().render_lines(crop)
        finally:
            self._pass_style = None

    # Wherever the table drops its own rendered lines, these go too.
    def _clear_caches(self) -> None:
        super()._clear_caches()
        self._strips.clear()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    def _update_column_widths(self, updated_cells: set[CellKey]) -> None:
        super()._update_column_widths(updated_cells)
        self._strips.clear()

    def _render_line(self, y: int, x1: int, x2: int, base_style: Style) -> Strip:
        # The table's own line cache is keyed on its update count, which any cell's
        # update bumps: this one keys a line on what draws it (its row's last update,
        # rows added or cleared, the widths, the cursor or the mouse on that row).
        try:
            row_key, _line = self._get_offsets(y)
        except LookupError:
            return super()._render_line(y, x1, x2, base_style)
        row = y - self.header_height
        key = (
            row_key,
            self._row_updates.get(row_key),
            self._update_count - self._cell_updates,
            self._layout_epoch,
            x1,
            x2,
            self.size.width,
            base_style,
            self.cursor_type,
            self.show_cursor,
            self.cursor_row == row if self.cursor_type == "row" else self.cursor_coordinate,
            self._show_hover_cursor and self.hover_row == row,
            self._pseudo_class_state,
        )
        strip = self._strips.get(key)
        if strip is None:
            if len(self._strips) > 4 * max(self.row_count, 64):
                self._strips.clear()  # old keys only: rows redrawn since
            strip = self._strips[key] = super()._render_line(y, x1, x2, base_style)
        return strip

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

    def on_screen(self) -> list[str]:
        """The rows within the table's height now, top to bottom."""
        top = int(self.scroll_y)
        return list(self._shown)[top : top + self.size.height]

    def scrolled(self) -> None:
        """The rows on screen changed: bring them up to the last refresh (after this
        scroll's events, once however many there were)."""
        if not self._catching_up and self._latest is not None:
            self._catching_up = True
            self.call_later(self._catch_up)

    def _catch_up(self) -> None:
        self._catching_up = False
        if self._latest is not None:
            snap, views = self._latest
            self.show(snap, views, self._marks, scrolled=True)

    def show(
        self,
        snap: Snapshot,
        views: Sequence[SessionView],
        marks: Collection[str],
        *,
        scrolled: bool = False,
    ) -> None:
        """A refresh (or, ``scrolled``, the rows a scroll brought on screen)."""
        self._latest = (snap, views)
        columns = FLEET_COLUMNS if snap.fleet else COLUMNS
        grey = {v.name for v in views if v.unreachable}
        regrey = grey != self._grey
        self._grey = grey
        changed = columns != self._columns
        if changed:
            self._columns = columns
            self._shown = {}  # every row again, in the new columns
        marked = frozenset(marks)
        remarked = marked != self._marks
        self._marks = marked
        # Rows on screen follow every refresh and scroll; the others every
        # OFFSCREEN_EVERY-th refresh, and all of them when the rows, the columns, the
        # marks or the greying changed.
        self._ticks += not scrolled
        names = [v.name for v in views]
        same_rows = names == list(self._shown)
        everything = (
            not same_rows
            or regrey
            or remarked
            or (not scrolled and self._ticks % OFFSCREEN_EVERY == 0)
        )
        top = int(self.scroll_y)
        todo = range(len(views)) if everything else range(top, top + self.size.height)
        fresh = {
            views[i].name: row_texts(views[i], snap, views[i].name in marked)
            for i in todo
            if i < len(views)
        }
        if everything:
            widths = _widths(fresh.values(), self._budget(), columns)
        else:
            shown = [fresh.get(name, texts) for name, texts in self._shown.items()]
            widths = _widths(shown, self._budget(), columns)
            if widths != self._col_widths:  # every line again, in the new widths
                fresh = {v.name: row_texts(v, snap, v.name in marked) for v in views}
                widths = _widths(fresh.values(), self._budget(), columns)
        resized = widths != self._col_widths or regrey or changed
        if resized:
            self._set_widths(widths)
        if not same_rows:
            self._rebuild(fresh)
            return
        for name, texts in fresh.items():
            if texts == self._shown[name] and not resized:
                continue
            self.update_cell(name, ROW, self._row(name, texts, widths), update_width=resized)
            self._shown[name] = texts

    def _rebuild(self, rows: dict[str, tuple[str, ...]]) -> None:
        current, index = self.highlighted, self.cursor_row
        self.clear()
        self._row_updates.clear()
        self._strips.clear()
        self.columns[ColumnKey(ROW)].content_width = sum(self._col_widths)
        for name, texts in rows.items():
            self.add_row(self._row(name, texts, self._col_widths), key=name)
        self._shown = rows
        if not rows:
            return
        names = list(rows)
        row = names.index(current) if current in rows else min(index, len(names) - 1)
        self.move_cursor(row=max(row, 0), animate=False)
