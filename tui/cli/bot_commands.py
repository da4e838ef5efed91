"""The handler of `zapvisor secret` (its arguments are in tui/cli/bot.py)."""

from __future__ import annotations

import argparse
import getpass
import sys

from tui.cli import output
from tui.cli.registry import orchestrator


def _read_key() -> str:
    if sys.stdin.isatty():
        return getpass.getpass("key (not echoed): ")
    return sys.stdin.read()


def secret(args: argparse.Namespace) -> int:
    key = None if args.remove else _read_key()
    source = orchestrator().set_ai_key(args.name, args.provider, key)
    if args.json:
        output.emit_json(
            {"name": args.name, "provider": args.provider, "removed": args.remove, "source": source}
        )
        return 0
    what = "removed" if args.remove else "stored"
    now = f"the bot now uses {source}" if source else "the bot has no key for it now"
    print(f"{what} the {args.provider} key of {args.name}; {now}")
    return 0
