"""The session screen's two panels: what runs (process facts, why it is down) and how
the session is configured."""

from __future__ import annotations

import json
from datetime import datetime

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from ecosystem.conversations import BotActivity
from ecosystem.lease import AuthKind
from ecosystem.metrics import ProcStats
from ecosystem.session import utcnow
from ecosystem.views import SessionView, age, since
from tui.format import percent, size, status_text

_LOCAL_FMT = "%m-%d %H:%M"


def _grid(*, one_line: bool = False) -> Table:
    """Label and value columns; ``one_line`` cuts each value to one line (with …)."""
    grid = Table.grid(padding=(0, 1))
    if one_line:  # the value gives way, not the label beside it ("description")
        grid.add_column(style="dim", no_wrap=True, min_width=11)
        grid.add_column(overflow="ellipsis", no_wrap=True, ratio=1)
    else:
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
        now: datetime,
        why: str | None,
    ) -> None:
        """``why`` is supervisord's own account of a fall (spawn error, exit status,
        last stderr lines), asked for once per fall."""
        s = view.session
        grid = _grid()
        status = Text()
        status.append_text(status_text(view))  # its colour on the status word only
        h = view.health
        if view.parked and h is not None and h.parked_at is not None:
            status.append(f"  since {_local(h.parked_at)}", style="red")
            status.append(" · s starts it again", style="bold")
        else:
            status.append(f"  wanted {s.desired_state}", style="dim")
        grid.add_row("status", status)
        _down_rows(grid, view, why)  # first: at 80x24 the panel's last rows are cut
        if s.phone:
            phone = Text(s.phone, style="bold")
            if s.connected_at:
                phone.append(f"  since {_local(s.connected_at)}", style="dim")
                phone.append(f" ({since(s.connected_at, now)})", style="dim")
            grid.add_row("phone", phone)
        grid.add_row("runner", f"pid {view.pid or '-'}  port {s.port}  up {age(view.uptime)}")
        if proc is not None:
            pss = size(proc.pss) if proc.pss is not None else "…"
            grid.add_row(
                "usage", f"cpu {percent(proc.cpu_percent)}%  rss {size(proc.rss)}  pss {pss}"
            )
        grid.add_row("messages", f"{s.messages_sent} sent, {s.messages_received} received")
        _monitor_rows(grid, view, now)
        self.update(grid)


def _down_rows(grid: Table, view: SessionView, why: str | None) -> None:
    """Why it is not running, each fact once: the monitor's account, then what
    supervisord adds to it (spawn error, exit status, last stderr lines)."""
    s, proc, h = view.session, view.process, view.health
    down = view.why_down
    said = [down] if down else []
    if down:
        grid.add_row("why down", Text(down, style="bold red"))
    if proc is not None and proc.spawnerr and not any(proc.spawnerr in t for t in said):
        grid.add_row("spawn error", Text(proc.spawnerr, style="red"))
        said.append(proc.spawnerr)
    status = view.exit_status
    if status is not None:
        said.append(f"exit status {status}")
        if h is None or h.last_exit_status != status:  # else "last exit" says it
            grid.add_row("exit status", Text(str(status), style="red"))
    if why:
        new = [part for part in why.split("; ") if not any(part in t for t in said)]
        if new:
            grid.add_row("supervisord", Text("; ".join(new), style="red"))
    if s.last_error and not any(s.last_error in t for t in said):
        grid.add_row("last error", Text(s.last_error, style="red"))


def _monitor_rows(grid: Table, view: SessionView, now: datetime) -> None:
    """What the health monitor recorded: its restarts, the last exit, a pending
    restart, a parking."""
    h = view.health
    restarts = Text(str(view.restarts))
    if h is not None and h.last_restart_at is not None:
        restarts.append(f" · last {since(h.last_restart_at, now)} ago", style="dim")
        if h.last_restart_reason:
            restarts.append(f": {h.last_restart_reason}", style="dim")
    grid.add_row("restarts", restarts)
    if h is None:
        return
    if h.last_exit_status is not None:
        exit_ = f"status {h.last_exit_status}"
        if h.last_exit_at is not None:
            exit_ += f" at {_local(h.last_exit_at)} ({since(h.last_exit_at, now)} ago)"
        grid.add_row("last exit", exit_)
    if h.next_restart_at is not None:
        left = (h.next_restart_at - now).total_seconds()
        when = f"in {age(left)} (crash backoff)" if left > 0 else "now"
        grid.add_row("next restart", Text(when, style="yellow"))


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

    def show(
        self,
        view: SessionView,
        deliveries: dict[str, int] | None = None,
        bot: BotActivity | None = None,
        now: datetime | None = None,
    ) -> None:
        """``deliveries``: the webhook outbox's counts by state, None when unknown;
        ``bot``: the bot's last reply and error, None when unknown.
        One line per value, so a long URL or JSON never pushes the rest (or the log)
        off an 80x24 screen: `e` shows each whole."""
        s = view.session
        grid = _grid(one_line=True)
        grid.add_row("connector", s.connector)
        grid.add_row("auth", _auth(view))
        grid.add_row("description", s.description or "-")
        grid.add_row("webhook", s.webhook_url or "-")
        if deliveries is not None and (s.webhook_url or any(deliveries.values())):
            pending = deliveries.get("pending", 0)
            grid.add_row("delivered", f"{deliveries.get('delivered', 0)} ({pending} pending)")
            dead = deliveries.get("dead", 0)
            grid.add_row(
                "dead", Text(f"{dead} · w replays", style="bold red") if dead else Text("0")
            )
        grid.add_row("ai_config", json.dumps(s.ai_config, ensure_ascii=False) or "{}")
        grid.add_row("timing", json.dumps(s.timing_config, ensure_ascii=False) or "{}")
        if s.ai_config.get("enabled") and bot is not None:
            now = now or utcnow()
            reply = bot.last_reply_at
            grid.add_row("ai reply", f"{since(reply, now)} ago" if reply else "none yet")
            if bot.last_error_at is not None:
                why = f"{since(bot.last_error_at, now)} ago: {bot.last_error}"
                # red while it is the latest word: a reply since means it recovered
                latest = reply is None or bot.last_error_at > reply
                grid.add_row("ai error", Text(why, style="bold red" if latest else ""))
        self.update(grid)


def _auth(view: SessionView) -> Text:
    """Where its WhatsApp auth lives, and whether it can fail over (m moves it). Short:
    the config panel keeps one line per value, about 16 cells wide at 80x24."""
    s = view.session
    if s.auth != AuthKind.STORE:
        return Text("local · pinned", style="yellow")  # in files on its host: no move
    if not s.failover:
        return Text("store · manual")  # moves only when asked (m)
    return Text("store · failover")
