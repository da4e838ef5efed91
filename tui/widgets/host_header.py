"""Two lines about the machine: its load, supervisord, the store, and capacity."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ecosystem.health.model import Severity
from ecosystem.liveview import Snapshot
from ecosystem.states import ProcessState
from tui.format import size


class HostHeader(Static):
    DEFAULT_CSS = """
    HostHeader {
        height: 2;
        padding: 0 1;
        background: $panel;
        color: $text;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: Text | None = None

    def show(self, snap: Snapshot | None, *, booting: bool = False) -> None:
        text = header_text(snap, booting=booting)
        if text == self._shown:
            return  # most refreshes change nothing here: no re-render
        self._shown = text
        # Two lines whatever they say (height: 2): no layout pass for the screen.
        self.update(text, layout=False)


def header_text(snap: Snapshot | None, *, booting: bool = False) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    if snap is None:
        text.append("zapvisor ", style="bold")
        text.append("reading the store and supervisord…")
        return text
    text.append(snap.host_id, style="bold")
    host = snap.host
    if host is not None:
        text.append(f"  CPU {host.cpu_percent:.0f}%")
        text.append(f" ({host.cpu_count} cores)", style="dim")
        text.append(f"  load {host.load1:.2f}")
        text.append(f"  RAM {size(host.mem_used)}/{size(host.mem_total)}")
        text.append(f"  disk {host.disk_percent:.0f}% of {size(host.disk_total)}")
    text.append("\n")
    if snap.supervisord_up:
        text.append("supervisord ")
        text.append("up", style="green")
    elif booting:
        text.append("supervisord ")
        text.append("starting…", style="yellow")
    else:
        text.append("supervisord ")
        text.append("DOWN", style="bold red")
    used = len(snap.views)
    text.append("  sessions ")
    full = used >= snap.max_sessions
    text.append(f"{used}/{snap.max_sessions}", style="bold red" if full else "bold")
    running = sum(1 for v in snap.views if v.process_state == ProcessState.RUNNING)
    text.append(f" ({running} running)", style="dim")
    text.append_text(alerts_text(snap))  # before the store: a long path is cut, not this
    text.append(f"  store {snap.store}", style="dim")
    return text


def alerts_text(snap: Snapshot) -> Text:
    """The count of raised alerts (`a` lists them); nothing when the store keeps none."""
    if snap.alerts is None:
        return Text()
    count = len(snap.alerts)
    if not count:
        return Text("  no alerts", style="dim")
    critical = any(a.severity == Severity.CRITICAL for a in snap.alerts)
    text = Text("  ")
    text.append(
        f" {count} alert{'s' if count > 1 else ''} ",
        style="bold reverse red" if critical else "bold reverse yellow",
    )
    text.append(" a", style="dim")
    return text
