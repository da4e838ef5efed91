"""A session's log as it is written: newest at the bottom, bounded, following the end
unless the operator scrolled up to read."""

from __future__ import annotations

from collections.abc import Iterable

from textual.widgets import Log

from ecosystem import logfiles

MAX_LINES = 2000
"""Lines kept; older ones are dropped so a chatty runner cannot grow the app."""

STDERR_MARK = "err│ "


class LogPane(Log):
    DEFAULT_CSS = """
    LogPane {
        height: 1fr;
        border: round $primary 50%;
        border-title-color: $text-muted;
    }
    LogPane:focus {
        border: round $primary;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, max_lines=MAX_LINES, auto_scroll=True)
        self.border_title = "log"
        self.following = True
        """Keep the newest line in view. Log decides at each write from the scroll
        position alone, so a pane that shrank after its lines came (the panels above
        it filled in, the terminal got smaller) lost its end and stopped following;
        this remembers the operator's choice instead: it ends when they scroll up and
        comes back when they scroll to the end."""

    def add(self, lines: Iterable[tuple[bool, str]]) -> None:
        """(is_stderr, raw line) pairs: runner JSON lines are shown readable."""
        out = [STDERR_MARK + line if err else logfiles.pretty(line) for err, line in lines if line]
        if out:
            self.write_lines(out, scroll_end=False)
            self._keep_end()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if new_value < old_value:
            self.following = self.is_vertical_scroll_end
        elif self.is_vertical_scroll_end:
            self.following = True

    def on_resize(self) -> None:
        self._keep_end()

    def _keep_end(self) -> None:
        # after the refresh: the scroll range is known only once laid out at its size
        if self.following:
            self.scroll_end(animate=False, x_axis=False)
