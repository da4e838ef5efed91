"""The session commands' arguments (create, list, show, start, stop, …)."""

from __future__ import annotations

import argparse

from ecosystem.names import CONNECTORS, DEFAULT_CONNECTOR, NAME_RULE
from tui.cli.registry import SubParsers, add_command


def commands(function: str) -> str:
    """The handler ``function`` of tui/cli/commands.py, imported when it runs."""
    return f"tui.cli.commands:{function}"


def register(sub: SubParsers) -> None:

    p = add_command(
        sub,
        "create",
        "create a session and start its runner",
        commands("create"),
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
    p.add_argument(
        "--auth",
        choices=("local", "store"),
        help="where its WhatsApp auth lives: store (can fail over to another host; the "
        "default on PostgreSQL/Supabase when the connector can) or local files",
    )
    p.add_argument(
        "--no-failover",
        dest="failover",
        action="store_false",
        help="never take it over on another host when this one goes silent",
    )
    p.add_argument(
        "--host",
        metavar="HOST",
        help="the host that runs it (default: the reachable host with the most room)",
    )

    p = add_command(
        sub, "list", "list sessions with their host, status, port and pid", commands("list_")
    )
    p.add_argument("--host", metavar="HOST", help="only this host's sessions")
    p = add_command(sub, "show", "show one session in full", commands("show"))
    p.add_argument("name", metavar="NAME")

    for verb, text in (
        ("start", "start a session's runner (and keep it running)"),
        ("stop", "stop a session's runner (it stays stopped until started)"),
        ("restart", "restart a session's runner with a new process"),
    ):
        p = add_command(sub, verb, text, commands(verb))
        p.add_argument("name", metavar="NAME")

    p = add_command(
        sub, "config", "change a session's description, webhook or JSON config", commands("config")
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("--description", help="free text shown in lists")
    p.add_argument("--webhook-url", help="where its events are POSTed ('' removes it)")
    p.add_argument("--ai-config", metavar="JSON", help="a JSON object (replaces the old one)")
    p.add_argument("--timing-config", metavar="JSON", help="a JSON object (replaces the old one)")

    p = add_command(
        sub, "delete", "delete a session: program removed, port freed", commands("delete")
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument(
        "--purge", action="store_true", help="also remove its WhatsApp auth in tokens/NAME/"
    )
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")

    p = add_command(
        sub, "logout", "unlink the phone and delete the session's auth", commands("logout")
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")

    p = add_command(
        sub,
        "qr",
        "show the session's pairing QR code in the terminal",
        commands("qr"),
        epilog="A real WhatsApp code needs 61x31 character cells, or 31x21 with --compact\n"
        "(Unicode sextants: not every terminal font has them); when the terminal is\n"
        "smaller, use --png and open the file.",
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
    p.add_argument(
        "--compact",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="2x3 modules per cell (fits 80x24; needs a font with Unicode sextants); "
        "--no-compact: half-blocks (default: ZAPVISOR_QR_COMPACT)",
    )

    p = add_command(
        sub,
        "sim-scan",
        "make the simulated phone scan the QR (sim connector)",
        commands("sim_scan"),
    )
    p.add_argument("name", metavar="NAME")

    p = add_command(
        sub,
        "logs",
        "print a session's log lines, or every session's (--all)",
        commands("logs"),
        epilog="--all: every session's stdout and stderr merged in time order, each line\n"
        "after its session's name; -n lines of each, then (-f) new lines as they come.",
    )
    p.add_argument("name", metavar="NAME", nargs="?")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    p.add_argument(
        "-n", "--lines", type=int, help="how many lines (default 50; with --all 20 per session)"
    )
    p.add_argument("--stderr", action="store_true", help="the runner's stderr instead")
    p.add_argument("--raw", action="store_true", help="JSON lines as written")
    p.add_argument("--all", action="store_true", help="every session's lines in one stream")
    p.add_argument("--host", metavar="HOST", help="with --all: only this host's sessions")
    p.add_argument("--grep", metavar="RE", help="with --all: only lines this regex matches")

    p = add_command(
        sub, "events", "the audit trail: who did what to which session, when", commands("events")
    )
    p.add_argument("name", metavar="NAME", nargs="?", help="one session (default: all)")
    p.add_argument("-n", "--lines", type=int, default=30, help="how many (default 30)")

    add_command(sub, "doctor", "check state dir, store, supervisord and ports", commands("doctor"))
    p = add_command(
        sub,
        "apply",
        "re-render supervisord's config from the store and apply changes; with -f, "
        "make the fleet what a fleet file declares",
        commands("apply"),
        epilog="With -f FILE: shows the plan (as `zapvisor plan -f FILE`), asks, then makes\n"
        "exactly those changes. Sessions the file does not name are left alone unless --prune.",
    )
    p.add_argument("-f", "--file", metavar="FILE", help="a fleet file (zapvisor.toml)")
    p.add_argument(
        "--prune", action="store_true", help="with -f: delete sessions (and empty hosts) it omits"
    )
    p.add_argument("-y", "--yes", action="store_true", help="with -f: do not ask")
    p.add_argument(
        "--install",
        action="store_true",
        help="with -f: install zapvisor on hosts it adds without asking",
    )
    p = add_command(
        sub,
        "ctl",
        "run supervisorctl on zapvisor's supervisord (e.g. `ctl status`)",
        commands("ctl"),
        json_flag=False,
    )
    p.add_argument("ctl_args", nargs=argparse.REMAINDER, metavar="ARGS")
    add_command(
        sub,
        "shutdown",
        "stop every runner and supervisord (desired states are kept)",
        commands("shutdown"),
    )
