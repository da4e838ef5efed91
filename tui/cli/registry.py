"""Adding a subcommand the same way everywhere: help, description, --json, handler.

A handler is a function, or the "module:function" that holds it: building the parser
then imports no command's code, and a command imports only its own (the core's import
chain is most of a short command's time).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from ecosystem.orchestrator import Orchestrator

    SubParsers: TypeAlias = argparse._SubParsersAction[Any]
else:
    SubParsers = argparse._SubParsersAction


Handler: TypeAlias = Callable[[argparse.Namespace], int]


def add_command(
    sub: SubParsers,
    name: str,
    help_text: str,
    handler: Handler | str,
    *,
    json_flag: bool = True,
    epilog: str | None = None,
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help_text,
        description=help_text[0].upper() + help_text[1:] + ".",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if json_flag:
        parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.set_defaults(handler=handler)
    return parser


def resolve(handler: Handler | str) -> Handler:
    """The function behind a handler given as "module:function"."""
    if not isinstance(handler, str):
        return handler
    module, _, function = handler.partition(":")
    found: Handler = getattr(importlib.import_module(module), function)
    return found


def orchestrator() -> Orchestrator:
    """The door, on this host's settings, reporting progress on a terminal, with links to
    the fleet's other hosts (see tui.cli.control)."""
    from tui.cli import control

    return control.door()
