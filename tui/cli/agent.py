"""`zapvisor agent --stdio`: this host's side of a link from a control machine.

A control machine starts it over SSH and keeps it for as long as it holds the link; it
speaks JSON lines on stdin/stdout (ecosystem/fleet/protocol.py) and runs each request
with this host's own settings, store and supervisord. Not for typing at a terminal."""

from __future__ import annotations

import argparse
import sys

from tui.cli.registry import SubParsers, add_command


def register(sub: SubParsers) -> None:
    p = add_command(
        sub,
        "agent",
        "serve a control machine on stdin/stdout (started over SSH by `zapvisor hosts`)",
        run,
        json_flag=False,
    )
    p.add_argument("--stdio", action="store_true", help="speak the protocol on stdin/stdout")


def run(args: argparse.Namespace) -> int:
    # the core and asyncio only for this command: every other command builds this parser
    import asyncio

    from ecosystem.errors import InvalidValue
    from ecosystem.fleet.agent import serve_stdio
    from ecosystem.orchestrator import Orchestrator
    from ecosystem.settings import load_settings

    if not args.stdio:
        raise InvalidValue("`zapvisor agent` needs --stdio (it is started by a control machine)")
    if sys.stdin.isatty():
        raise InvalidValue(
            "`zapvisor agent --stdio` speaks JSON lines to a control machine, not to a "
            "terminal: use the other commands here"
        )
    orch = Orchestrator(load_settings())
    try:
        asyncio.run(serve_stdio(orch))
    finally:
        orch.close()
    return 0
