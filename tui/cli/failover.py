"""`zapvisor move`, `zapvisor moves` and `zapvisor failover`: planned moves between hosts,
what moved (failovers included), and a session's failover switch. The handlers are in
tui/cli/failover_commands.py, imported only when one runs."""

from __future__ import annotations

from tui.cli.registry import SubParsers, add_command

MOVE_EPILOG = """\
The session's host stops it and hands it over; HOST takes it on a port of its own range
and starts it: same phone, no new QR. Refused (nothing changes) when HOST is unknown or
not answering, full (MAX_SESSIONS or its RAM floor), or the session's auth is local
(its WhatsApp login is in files on its host). Needs PostgreSQL or Supabase, and the
health monitor running on both hosts."""

FAILOVER_EPILOG = """\
With failover on (the default) and its auth in the store, a session whose host goes
silent is taken over by another host once its lease runs out (ZAPVISOR_LEASE_SECONDS).
--auth changes where the auth lives; only while no phone is linked (logout first)."""


AUTH_KINDS = ("local", "store")
"""ecosystem.lease.AuthKind's values (tests/test_tui_cli.py keeps them equal)."""


def _run(function: str) -> str:
    """The handler ``function`` of tui/cli/failover_commands.py, imported when it runs."""
    return f"tui.cli.failover_commands:{function}"


def register(sub: SubParsers) -> None:
    p = add_command(
        sub,
        "move",
        "move a session to another host (same phone, no QR)",
        _run("move"),
        epilog=MOVE_EPILOG,
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("--to", required=True, metavar="HOST", help="the host to run it (its host id)")
    p.add_argument(
        "--timeout", type=float, metavar="SECONDS", help="how long to wait for it to run there"
    )

    p = add_command(sub, "moves", "what moved between hosts, when and why", _run("moves"))
    p.add_argument("--host", metavar="HOST", help="only moves from or to this host")
    p.add_argument("-n", "--lines", type=int, default=30, help="how many (default 30)")

    p = add_command(
        sub,
        "failover",
        "turn a session's failover on or off, or change where its auth lives",
        _run("failover"),
        epilog=FAILOVER_EPILOG,
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("state", nargs="?", choices=("on", "off"), help="failover on or off")
    p.add_argument("--auth", choices=AUTH_KINDS, help="local or store")
