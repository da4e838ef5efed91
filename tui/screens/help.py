"""`?`: every key, and what the columns mean."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from tui.action_table import key_rows


def _keys(screen: str) -> str:
    rows = [f"| `{key}` | {text} |" for key, text in key_rows(screen)]
    return "| key | does |\n|---|---|\n" + "\n".join(rows) + "\n"


HELP = f"""\
# zapvisor

## Sessions (home)
{_keys("sessions")}| `ctrl+p` | command palette: every action, by name |

## Session screen
{_keys("session")}
## Alerts
| key | does |
|---|---|
| `enter` | open the alert's session |
| `escape` `a` | back |

## Columns
**STATUS** is what the runner reports while it runs (`initializing`, `waiting_scan`,
`connected`, `disconnected`, `phone_disconnected`, `error`, `reconnecting`) and
supervisord's process state otherwise (`STARTING`, `BACKOFF`, `STOPPED`, `EXITED`,
`FATAL`), so a dead runner never looks connected.
**RST** counts the health monitor's restarts of the runner (after a crash, a hang,
the memory cap, a stuck state); the session screen says when and why, the last exit,
the next restart pending, and whether a crash loop **PARKED** it (stopped until `s`).
**CPU%** is of one core since the previous refresh; **RSS** is resident memory (the
session screen also shows PSS, memory with shared pages split fairly).
**ACTIVE** is the time since the session's last message.

A red banner means the store or supervisord is not answering: the figures are as of
the last refresh, and every key still works. The header counts the raised alerts.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog"):
            yield Markdown(HELP)
