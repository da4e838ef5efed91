"""`zapvisor`: the console script. With no command on a terminal it opens the app."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn, cast

from ecosystem import __version__
from ecosystem.errors import ZapvisorError
from tui.cli import (
    access,
    agent,
    alerts,
    backup,
    bot,
    control,
    db,
    declare,
    failover,
    hosts,
    output,
    service,
    session_args,
    webhooks,
)
from tui.cli.registry import Formatter, LazySubParsers, resolve

# Each module adds its subcommands with `register(sub)`; a feature adds its own module.
# Their top level imports only what the arguments need (argparse, names, constants):
# the core is imported by the handler that runs (tests/test_layering.py checks it).
COMMAND_MODULES = (
    session_args, db, alerts, service, access, webhooks, backup, declare, bot, agent, hosts,
    failover,
)  # fmt: skip

DESCRIPTION = """\
Run many WhatsApp sessions on this server. Each session is one runner process under
supervisord, with its own port from BASE_PORT; config and status live in the store
(embedded SQLite unless SUPABASE_URL or ZAPVISOR_DATABASE_URL is set).

Run `zapvisor` alone on a terminal for the interactive manager."""

EPILOG = """\
examples:
  zapvisor create cliente-001 --connector sim    a session on the next free port
  zapvisor list                                  all sessions (--json for scripts)
  zapvisor qr cliente-001 --wait                 its pairing QR, in the terminal
  zapvisor restart cliente-001                   new runner process, others untouched
  zapvisor logs cliente-001 -f                   follow its log
  zapvisor doctor                                what is wrong, and what to do
  zapvisor hosts list                            the machines of the fleet

exit codes: 0 ok, 1 doctor found a failure, 2 usage or declined, 65 bad input,
66 unknown session or host, 69 store/supervisord/runner/host unavailable, 73 exists or
cannot write (disk full), 75 capacity, not possible now or host still in use, 77 SSH key
refused or host key not trusted, 78 bad setting."""


class _Parser(argparse.ArgumentParser):
    """Usage errors on one line, like every other zapvisor error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser. With ``command``, only that command's parser is built
    with its arguments (all are when ``command`` names none)."""
    parser = _Parser(
        prog="zapvisor",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=Formatter,
    )
    parser.add_argument("--version", action="version", version=f"zapvisor {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = cast(
        LazySubParsers,
        parser.add_subparsers(dest="command", metavar="COMMAND", action=LazySubParsers),
    )
    sub.only = command
    for module in COMMAND_MODULES:
        module.register(sub)
    if command is not None and not sub.built:
        return build_parser()
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # the first word that is no option is the command (zapvisor's own take no value)
    parser = build_parser(next((a for a in argv if not a.startswith("-")), None))
    args = parser.parse_args(argv)
    if args.command is None:
        if sys.stdin.isatty() and sys.stdout.isatty():
            return resolve("tui.cli.commands:open_app")(args)
        parser.print_help(sys.stderr)
        print("\nzapvisor: error: no command given (the app needs a terminal)", file=sys.stderr)
        return 2
    try:
        code: int = resolve(args.handler)(args)
        return code
    except ZapvisorError as exc:
        if args.debug:
            raise
        output.error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    finally:
        control.close_all()


if __name__ == "__main__":
    sys.exit(main())
