"""`zapvisor secret NAME openai|gemini`: a session's own provider key for its bot."""

from __future__ import annotations

import argparse
import getpass
import sys

from ecosystem.orchestrator import Orchestrator
from ecosystem.settings import load_settings
from tui.cli import output
from tui.cli.registry import SubParsers, add_command


def _orch() -> Orchestrator:
    return Orchestrator(load_settings(), progress=output.progress)


def register(sub: SubParsers) -> None:
    p = add_command(
        sub,
        "secret",
        "set a session's own API key for its bot (read from stdin, never printed)",
        secret,
        epilog="The key goes to secrets/NAME.PROVIDER-key (0600) on the session's host and wins\n"
        "over the host's OPENAI_KEY / GEMINI_KEY. It is never printed, logged or stored.\n"
        "examples:\n"
        "  zapvisor secret cliente-001 openai < openai.key\n"
        "  zapvisor secret cliente-001 gemini --remove",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("provider", choices=("openai", "gemini"), metavar="openai|gemini")
    p.add_argument(
        "--remove", action="store_true", help="delete the session's own key (the host's applies)"
    )


def _read_key() -> str:
    if sys.stdin.isatty():
        return getpass.getpass("key (not echoed): ")
    return sys.stdin.read()


def secret(args: argparse.Namespace) -> int:
    key = None if args.remove else _read_key()
    source = _orch().set_ai_key(args.name, args.provider, key)
    if args.json:
        output.emit_json(
            {"name": args.name, "provider": args.provider, "removed": args.remove, "source": source}
        )
        return 0
    what = "removed" if args.remove else "stored"
    now = f"the bot now uses {source}" if source else "the bot has no key for it now"
    print(f"{what} the {args.provider} key of {args.name}; {now}")
    return 0
