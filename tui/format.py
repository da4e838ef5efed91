"""How figures read on screen: sizes, percentages, and a colour per status."""

from __future__ import annotations

from rich.text import Text

from ecosystem.states import ProcessState
from ecosystem.views import SessionView

STATUS_STYLES = {
    # the seven session statuses (the runner is RUNNING)
    "connected": "bold green",
    "waiting_scan": "bold yellow",
    "initializing": "cyan",
    "reconnecting": "yellow",
    "disconnected": "bright_black",
    "phone_disconnected": "magenta",
    "error": "bold red",
    # supervisord's process states, shown instead when the runner is not RUNNING
    ProcessState.STARTING: "cyan",
    ProcessState.BACKOFF: "bold red",
    ProcessState.FATAL: "reverse bold red",
    ProcessState.EXITED: "red",
    ProcessState.STOPPED: "bright_black",
    ProcessState.STOPPING: "bright_black",
    ProcessState.UNKNOWN: "red",
    "NO PROGRAM": "red",
    # parked by the health monitor after a crash loop, until an operator starts it
    "PARKED": "reverse bold red",
    # its runner is down and another process holds its port: it could not start
    "PORT TAKEN": "bold red",
}


def shown_status(view: SessionView) -> str:
    """The status column, the same as `zapvisor list`'s (``SessionView.status_label``)."""
    return view.status_label


def status_text(view: SessionView) -> Text:
    shown = shown_status(view)
    return Text(shown, style=STATUS_STYLES.get(shown, ""))


def size(n: int | None) -> str:
    """Bytes as a short figure: 812K, 18.4M, 1.2G."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "K", "M", "G", "T"):
        if value < 1024 or unit == "T":
            if unit in ("B", "K"):
                return f"{value:.0f}{unit}"
            return f"{value:.1f}{unit}" if value < 100 else f"{value:.0f}{unit}"
        value /= 1024
    return f"{value:.0f}T"


def percent(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"
