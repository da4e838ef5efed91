"""A one-line warning that the data on screen is stale, and why; hidden when it is not."""

from __future__ import annotations

from textual.reactive import reactive
from textual.widgets import Static


class DegradedBanner(Static):
    DEFAULT_CSS = """
    DegradedBanner {
        height: auto;
        max-height: 2;
        padding: 0 1;
        background: $error;
        color: $text;
        text-style: bold;
        display: none;
    }
    DegradedBanner.-shown {
        display: block;
    }
    """

    message: reactive[str] = reactive("")

    def watch_message(self, message: str) -> None:
        self.update(message)
        self.set_class(bool(message), "-shown")
