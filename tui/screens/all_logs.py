"""`L`: every session's log lines in one stream, in time order, each after its
session's name (`zapvisor logs --all -f`); `/` keeps only the lines a pattern matches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input, Log, Static
from textual.worker import get_current_worker

from ecosystem.errors import ZapvisorError
from ecosystem.logstream import LogEntry, labelled, matcher
from tui.widgets.banner import DegradedBanner
from tui.widgets.key_bar import KeyBar
from tui.widgets.log_pane import MAX_LINES

if TYPE_CHECKING:
    from tui.app import ZapvisorApp

BACKLOG = 20
"""Lines of each session shown when the view opens (or its filter changes)."""


class AllLogsScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "back", "back"),
        Binding("slash", "filter", "filter", key_display="/"),
        Binding("question_mark", "app.help", "help", key_display="?"),
    ]

    @dataclass
    class EntriesRead(Message):
        entries: list[LogEntry]
        generation: int
        hosts: bool = False
        """Whether the lines come from several hosts (each name then says which)."""
        error: str | None = None

    def __init__(self) -> None:
        super().__init__()
        self.grep = ""
        self._width = 0
        self._generation = 0

    @property
    def zv(self) -> ZapvisorApp:
        return cast("ZapvisorApp", self.app)

    def compose(self) -> ComposeResult:
        yield Static("all sessions' logs", id="title")
        yield DegradedBanner(id="degraded")
        yield Input(placeholder="show only lines matching (a regular expression)", id="grep")
        yield Log(id="stream", max_lines=MAX_LINES, auto_scroll=True)
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#grep").display = False
        self.watch(self.app, "degraded", self._degraded)
        self.query_one("#stream", Log).focus()
        self._follow("")

    def _degraded(self, message: str) -> None:
        self.query_one(DegradedBanner).message = message

    def _title(self) -> None:
        what = f"  lines matching “{self.grep}”" if self.grep else ""
        self.query_one("#title", Static).update(f"all sessions' logs{what}")

    @work(thread=True, exclusive=True, group="all-logs", exit_on_error=False)
    def _follow(self, grep: str) -> None:
        worker = get_current_worker()
        generation = self._generation
        try:
            hosts = self.zv.orch.is_fleet
            stream = self.zv.orch.follow_all_logs(backlog=BACKLOG, grep=grep or None)
            for batch in stream:
                if worker.is_cancelled:
                    close = getattr(stream, "close", None)
                    if close is not None:
                        close()
                    break
                if batch:
                    self.post_message(self.EntriesRead(batch, generation, hosts))
        except ZapvisorError as exc:
            self.post_message(self.EntriesRead([], generation, error=str(exc)))

    def on_all_logs_screen_entries_read(self, message: EntriesRead) -> None:
        if message.generation != self._generation:
            return  # a batch of the stream the filter replaced
        log = self.query_one("#stream", Log)
        if message.error:
            log.write_line(f"cannot read the logs: {message.error}")
            return
        lines, self._width = labelled(message.entries, self._width, hosts=message.hosts)
        log.write_lines([f"{tag} | {text}" for tag, text in lines])

    def action_filter(self) -> None:
        box = self.query_one("#grep", Input)
        box.display = True
        box.value = self.grep
        box.focus()

    @on(Input.Submitted, "#grep")
    def _filtered(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        try:
            matcher(value or None)
        except ZapvisorError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self.query_one("#grep").display = False
        self.query_one("#stream", Log).focus()
        if value == self.grep:
            return
        self.grep = value
        self._generation += 1
        self.query_one("#stream", Log).clear()
        self._title()
        self._follow(value)

    def action_back(self) -> None:
        box = self.query_one("#grep", Input)
        if box.display:
            box.display = False
            self.query_one("#stream", Log).focus()
            return
        self.workers.cancel_group(self, "all-logs")
        self.dismiss()
