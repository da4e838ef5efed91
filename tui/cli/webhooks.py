"""`zapvisor webhooks NAME`: a session's webhook deliveries, dead letters and secret."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from ecosystem.states import DeliveryState
from tui.cli import output
from tui.cli.registry import SubParsers, add_command, orchestrator


def register(sub: SubParsers) -> None:
    p = add_command(
        sub,
        "webhooks",
        "show a session's webhook deliveries; replay the dead-lettered ones",
        webhooks,
        epilog="Deliveries are signed: X-Zapvisor-Signature = sha256=HMAC-SHA256(secret,\n"
        "'<X-Zapvisor-Timestamp>.<body>'); --secret prints the secret (kept in\n"
        "secrets/NAME.webhook-secret, 0600).",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("--replay", action="store_true", help="send the dead-lettered events again, now")
    p.add_argument(
        "--state",
        choices=[str(s) for s in DeliveryState],
        help="only deliveries in this state (e.g. dead)",
    )
    p.add_argument("-n", "--lines", type=int, default=20, help="how many (default 20)")
    p.add_argument("--secret", action="store_true", help="print the signing secret")
    p.add_argument(
        "--rotate-secret", action="store_true", help="make a new signing secret and print it"
    )


def webhooks(args: argparse.Namespace) -> int:
    orch = orchestrator()
    if args.secret or args.rotate_secret:
        secret = orch.webhook_secret(args.name, rotate=args.rotate_secret)
        if args.json:
            output.emit_json({"name": args.name, "secret": secret, "rotated": args.rotate_secret})
        else:
            print(secret)
        return 0
    state = DeliveryState(args.state) if args.state else None
    report = orch.webhook_report(
        args.name, state=state, limit=max(args.lines, 0), replay=args.replay
    )
    if args.json:
        output.emit_json(report.to_json())
        return 0
    counts = report.counts
    print(f"{report.name}: webhook {report.url or '(none: `zapvisor config NAME --webhook-url`)'}")
    print(f"events: {', '.join(report.events)}")
    print(
        f"{counts['pending']} pending, {counts['delivered']} delivered, {counts['dead']} dead"
        + (f"; {report.replayed} replayed" if args.replay else "")
    )
    if report.rows:
        from ecosystem.views import since

        now = datetime.now(UTC)
        rows = [
            [
                since(r.created_at, now),
                r.event,
                str(r.state),
                str(r.attempts),
                str(r.last_status or "-"),
                (r.last_error or "-")[:60],
                r.event_id,
            ]
            for r in report.rows
        ]
        headers = ["AGE", "EVENT", "STATE", "TRIES", "HTTP", "LAST ERROR", "ID"]
        print(output.table(headers, rows))
    return 0
