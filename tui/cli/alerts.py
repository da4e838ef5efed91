"""`zapvisor alerts`: what the health monitor raised (host thresholds, sessions in
error, FATAL runners, webhook dead-letters), active ones first."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from tui.cli import output
from tui.cli.registry import SubParsers, add_command, orchestrator

if TYPE_CHECKING:
    from ecosystem.health.model import Alert

EPILOG = """\
An alert is raised once when its condition starts and cleared once when it ends;
with ZAPVISOR_ALERT_WEBHOOK_URL set, both are POSTed there as JSON
({"event": "alert.raised" | "alert.cleared", "alert": {...}}).
Thresholds: ZAPVISOR_ALERT_RAM_PERCENT, ZAPVISOR_ALERT_CPU_PERCENT (for
ZAPVISOR_ALERT_CPU_SECONDS), ZAPVISOR_ALERT_DISK_PERCENT."""


def register(sub: SubParsers) -> None:
    p = add_command(sub, "alerts", "show the health monitor's active alerts", run, epilog=EPILOG)
    p.add_argument("--all", action="store_true", help="include cleared alerts (history)")
    p.add_argument("-n", "--lines", type=int, default=100, help="at most N alerts (default 100)")


def _row(a: Alert) -> list[str]:
    when = a.raised_at.strftime("%Y-%m-%d %H:%M:%S")
    state = (
        "active"
        if a.active
        else "cleared " + (a.cleared_at.strftime("%H:%M:%S") if a.cleared_at else "")
    )
    return [when, state.strip(), str(a.severity), str(a.kind), a.session_name or "-", a.message]


def run(args: argparse.Namespace) -> int:
    found = orchestrator().alerts(include_cleared=args.all, limit=max(1, args.lines))
    if args.json:
        output.emit_json([a.to_json() for a in found])
        return 0
    if not found:
        print("no alerts" if args.all else "no active alerts (--all shows cleared ones)")
        return 0
    headers = ["RAISED (UTC)", "STATE", "SEVERITY", "KIND", "SESSION", "MESSAGE"]
    print(output.table(headers, [_row(a) for a in found]))
    return 0
