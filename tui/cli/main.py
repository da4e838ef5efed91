"""`zapvisor`: the console script. With no command on a terminal it opens the app."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from ecosystem import __version__
from ecosystem.errors import ZapvisorError
from ecosystem.models import CONNECTORS, DEFAULT_CONNECTOR
from ecosystem.names import NAME_RULE
from tui.cli import commands, output

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

exit codes: 0 ok, 2 usage or declined, 65 bad input, 66 unknown session,
69 store/supervisord/runner unavailable, 73 exists, 75 capacity, 78 bad setting."""


def _add(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help_text: str,
    handler: Callable[..., int],
    *,
    json_flag: bool = True,
    epilog: str | None = None,
) -> argparse.ArgumentParser:
    parser = sub.add_parser(
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zapvisor",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"zapvisor {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = _add(
        sub,
        "create",
        "create a session and start its runner",
        commands.create,
        epilog=f"NAME: {NAME_RULE}.",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument(
        "--connector",
        choices=CONNECTORS,
        default=DEFAULT_CONNECTOR,
        help=f"how it links to WhatsApp (default: {DEFAULT_CONNECTOR})",
    )
    p.add_argument("--description", default="", help="free text shown in lists")
    p.add_argument("--webhook-url", help="where its events are POSTed")
    p.add_argument("--ai-config", metavar="JSON", help="a JSON object")
    p.add_argument("--timing-config", metavar="JSON", help="a JSON object")
    p.add_argument("--stopped", action="store_true", help="create it without starting it")

    _add(sub, "list", "list sessions with their status, port and pid", commands.list_)
    p = _add(sub, "show", "show one session in full", commands.show)
    p.add_argument("name", metavar="NAME")

    for verb, text in (
        ("start", "start a session's runner (and keep it running)"),
        ("stop", "stop a session's runner (it stays stopped until started)"),
        ("restart", "restart a session's runner with a new process"),
    ):
        p = _add(sub, verb, text, getattr(commands, verb))
        p.add_argument("name", metavar="NAME")

    p = _add(
        sub, "config", "change a session's description, webhook or JSON config", commands.config
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("--description", help="free text shown in lists")
    p.add_argument("--webhook-url", help="where its events are POSTed ('' removes it)")
    p.add_argument("--ai-config", metavar="JSON", help="a JSON object (replaces the old one)")
    p.add_argument("--timing-config", metavar="JSON", help="a JSON object (replaces the old one)")

    p = _add(sub, "delete", "delete a session: program removed, port freed", commands.delete)
    p.add_argument("name", metavar="NAME")
    p.add_argument(
        "--purge", action="store_true", help="also remove its WhatsApp auth in tokens/NAME/"
    )
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")

    p = _add(sub, "logout", "unlink the phone and delete the session's auth", commands.logout)
    p.add_argument("name", metavar="NAME")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")

    p = _add(
        sub,
        "qr",
        "show the session's pairing QR code in the terminal",
        commands.qr,
        epilog="The QR needs 61x31 character cells for a real WhatsApp code; when the\n"
        "terminal is smaller, use --png and open the file.",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument(
        "--wait",
        nargs="?",
        type=float,
        const=60.0,
        metavar="SECONDS",
        help="wait for a QR (default 60 s) when there is none yet",
    )
    p.add_argument("--png", metavar="FILE", help="write the QR as a PNG image instead")
    p.add_argument(
        "--plain",
        action="store_true",
        help="no colours: dark modules as characters (for files and light themes)",
    )

    p = _add(
        sub, "sim-scan", "make the simulated phone scan the QR (sim connector)", commands.sim_scan
    )
    p.add_argument("name", metavar="NAME")

    p = _add(sub, "logs", "print a session's log lines", commands.logs, json_flag=False)
    p.add_argument("name", metavar="NAME")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    p.add_argument("-n", "--lines", type=int, default=50, help="how many lines (default 50)")
    p.add_argument("--stderr", action="store_true", help="the runner's stderr instead")
    p.add_argument("--raw", action="store_true", help="JSON lines as written")

    _add(sub, "doctor", "check state dir, store, supervisord and ports", commands.doctor)
    _add(
        sub,
        "apply",
        "re-render supervisord's config from the store and apply changes",
        commands.apply,
    )
    p = _add(
        sub,
        "ctl",
        "run supervisorctl on zapvisor's supervisord (e.g. `ctl status`)",
        commands.ctl,
        json_flag=False,
    )
    p.add_argument("ctl_args", nargs=argparse.REMAINDER, metavar="ARGS")
    _add(
        sub,
        "shutdown",
        "stop every runner and supervisord (desired states are kept)",
        commands.shutdown,
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        if sys.stdin.isatty() and sys.stdout.isatty():
            return commands.open_app()
        parser.print_help(sys.stderr)
        print("\nzapvisor: error: no command given (the app needs a terminal)", file=sys.stderr)
        return 2
    try:
        code: int = args.handler(args)
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


if __name__ == "__main__":
    sys.exit(main())
