"""Adding a subcommand the same way everywhere: help, description, --json, handler.

A handler is a function, or the "module:function" that holds it: building the parser
then imports no command's code, and a command imports only its own (the core's import
chain is most of a short command's time).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import shutil
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from ecosystem.orchestrator import Orchestrator

    SubParsers: TypeAlias = argparse._SubParsersAction[Any]
else:
    SubParsers = argparse._SubParsersAction


Handler: TypeAlias = Callable[[argparse.Namespace], int]


@functools.cache
def _width() -> int:
    return shutil.get_terminal_size().columns - 2  # what HelpFormatter computes


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written; the terminal's width asked once per command,
    not by each of the ~190 arguments argparse checks with a formatter of its own."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        super().__init__(prog, indent_increment, max_help_position, width or _width())


class _Unbuilt:
    """Stands for the parser of a command this run does not parse: every call on it,
    and on what it returns, does nothing."""

    def __getattr__(self, name: str) -> _Unbuilt:
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> _Unbuilt:
        return self


class LazySubParsers(argparse._SubParsersAction):  # type: ignore[type-arg]
    """The commands' subparsers, of which only ``only``'s is built with its arguments
    (`main` sets it from the command line); the others get their name and help line
    alone. A short command then spends ~1 ms, not ~10, building its command line.
    ``only = None`` builds them all (help, an unknown command)."""

    only: str | None = None
    built: bool = False
    """Whether the parser of ``only`` was built."""

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        if self.only is None or name == self.only:
            self.built = self.built or name == self.only
            return super().add_parser(name, **kwargs)
        if "help" in kwargs:  # its line in `zapvisor --help`, never printed from here
            self._choices_actions.append(
                argparse.Action(option_strings=[], dest=name, help=kwargs["help"])
            )
        return _Unbuilt()


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
        formatter_class=Formatter,
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
