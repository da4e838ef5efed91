"""`zapvisor token` and `zapvisor pair`: reaching a session's API, linking by number."""

from __future__ import annotations

import argparse

from tui.cli import output
from tui.cli.registry import SubParsers, add_command
from tui.cli.registry import orchestrator as _orch


def register(sub: SubParsers) -> None:
    p = add_command(
        sub,
        "token",
        "print a session's API token (Bearer) for its HTTP API",
        token,
        epilog="The store keeps only a hash; the token itself is in secrets/NAME.token (0600).\n"
        'example: curl -H "Authorization: Bearer $(zapvisor token NAME)" '
        "http://127.0.0.1:PORT/status",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument(
        "--rotate", action="store_true", help="make a new token; the old one stops working"
    )

    p = add_command(
        sub,
        "pair",
        "link a phone by number: prints the code to type on the phone",
        pair,
        epilog="On the phone: WhatsApp > Linked devices > Link a device > Link with phone\n"
        "number instead, then type the code. The session must be showing a QR.",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("--phone", required=True, help="the number with its country code")


def token(args: argparse.Namespace) -> int:
    value = _orch().api_token(args.name, rotate=args.rotate)
    if args.json:
        output.emit_json({"name": args.name, "token": value, "rotated": args.rotate})
    else:
        print(value)
    return 0


def pair(args: argparse.Namespace) -> int:
    found = _orch().pair_phone(args.name, args.phone)
    if args.json:
        output.emit_json(found.to_json())
        return 0
    from ecosystem.models import utcnow
    from ecosystem.pairing import PAIR_STEPS

    print(f"pairing code for {found.name} ({found.phone}): {found.code}")
    if found.expires_at is not None:
        left = (found.expires_at - utcnow()).total_seconds()
        until = found.expires_at.astimezone().strftime("%H:%M:%S")
        print(f"valid until {until} (about {max(0, round(left / 60))} min)")
    print(PAIR_STEPS)
    return 0
