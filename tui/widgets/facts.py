"""The session screen's two panels: what runs (process facts, why it is down) and how
the session is configured."""

from __future__ import annotations

import json
from datetime import datetime

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from ecosystem.metrics import ProcStats
from ecosystem.views import SessionView, age, since
from tui.format import percent, size, status_text

_LOCAL_FMT = "%m-%d %H:%M"


def _grid() -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column(overflow="fold")
    return grid


def _local(moment: datetime) -> str:
    return moment.astimezone().strftime(_LOCAL_FMT)


class ProcessFacts(Static):
    DEFAULT_CSS = """
    ProcessFacts {
        width: 3fr;
        height: auto;
        border: round $primary 50%;
        border-title-color: $text-muted;
        padding: 0 1;
    }
    """

    def on_mount(self) -> None:
        self.border_title = "process"

    def show(
        self,
        view: SessionView,
        proc: ProcStats | None,
        restarts: int,
        now: datetime,
        why: str | None,
    ) -> None:
        s = view.session
        grid = _grid()
        status = status_text(view)
        status.append(f"  wanted {s.desired_state}", style="dim")
        grid.add_row("status", status)
        if s.phone:
            phone = Text(s.phone, style="bold")
            if s.connected_at:
                phone.append(f"  since {_local(s.connected_at)}", style="dim")
                phone.append(f" ({since(s.connected_at, now)})", style="dim")
            grid.add_row("phone", phone)
        grid.add_row(
            "runner",
            f"pid {view.pid or '-'}  port {s.port}  up {age(view.uptime)}  rst {restarts}",
        )
        if proc is not None:
            pss = size(proc.pss) if proc.pss is not None else "…"
            grid.add_row(
                "usage", f"cpu {percent(proc.cpu_percent)}%  rss {size(proc.rss)}  pss {pss}"
            )
        grid.add_row("messages", f"{s.messages_sent} sent, {s.messages_received} received")
        if view.process and view.process.state in ("EXITED", "FATAL", "BACKOFF"):
            grid.add_row("exit status", Text(str(view.process.exitstatus), style="red"))
        if view.process and view.process.spawnerr:
            grid.add_row("spawn error", Text(view.process.spawnerr, style="red"))
        if s.last_error:
            grid.add_row("last error", Text(s.last_error, style="red"))
        if why:
            grid.add_row("why down", Text(why, style="bold red"))
        self.update(grid)


class ConfigSummary(Static):
    DEFAULT_CSS = """
    ConfigSummary {
        width: 2fr;
        height: auto;
        border: round $primary 50%;
        border-title-color: $text-muted;
        border-subtitle-color: $text-muted;
        padding: 0 1;
    }
    """

    def on_mount(self) -> None:
        self.border_title = "config"
        self.border_subtitle = "e edit"

    def show(self, view: SessionView) -> None:
        s = view.session
        grid = _grid()
        grid.add_row("connector", s.connector)
        grid.add_row("description", s.description or "-")
        grid.add_row("webhook", s.webhook_url or "-")
        grid.add_row("ai_config", json.dumps(s.ai_config, ensure_ascii=False) or "{}")
        grid.add_row("timing", json.dumps(s.timing_config, ensure_ascii=False) or "{}")
        self.update(grid)
