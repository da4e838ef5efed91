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

    def add(self, lines: Iterable[tuple[bool, str]]) -> None:
        """(is_stderr, raw line) pairs: runner JSON lines are shown readable."""
        out = [STDERR_MARK + line if err else logfiles.pretty(line) for err, line in lines if line]
        if out:
            self.write_lines(out)
