"""`?`: every key, and what the columns mean."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# zapvisor

## Sessions (home)
| key | does |
|---|---|
| `n` | new session (form) |
| `enter` | open the session: QR, facts, config, log |
| `r` | restart (a new runner process; others untouched) |
| `s` | start a stopped session, stop a running one |
| `x` | log out: unlink the phone, delete its auth (asks first) |
| `d` | delete: remove its program, free its port (asks; can remove auth files) |
| `/` | filter by name, status or phone (`escape` clears) |
| `space` | mark a row; `r` `s` `x` `d` then act on every marked row (asks first) |
| `l` | the session's log |
| `q` | the session's pairing QR |
| `m` | move it to another host of the fleet (auth in the store): same phone, no QR |
| `a` | alerts: raised by the health monitor, and those cleared in the last day |
| `ctrl+p` | command palette: every action, by name |
| `?` | this help; `ctrl+q` quits |

## Session screen
| key | does |
|---|---|
| `q` | switch between the QR and the details |
| `l` | go to the log (scroll up to stop following; `end` follows again) |
| `e` | edit the config (JSON checked before saving) |
| `p` | pair by phone number: a code to type on the phone instead of scanning |
| `w` | replay the webhook events that exhausted their retries (dead letters) |
| `m` | move it to another host (its auth must be in the store) |
| `r` `s` `x` `d` | as on the sessions screen; `s` also starts a parked session again |
| `a` | alerts |
| `escape` | back to the sessions |

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
