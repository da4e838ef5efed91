"""`zapvisor move`, `zapvisor moves` and `zapvisor failover`: planned moves between hosts,
what moved (failovers included), and a session's failover switch."""

from __future__ import annotations

import argparse

from ecosystem.errors import InvalidValue
from ecosystem.lease import AuthKind
from ecosystem.moves import failover_note
from ecosystem.orchestrator import Orchestrator
from ecosystem.settings import load_settings
from tui.cli import output
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


def _orch() -> Orchestrator:
    return Orchestrator(load_settings(), progress=output.progress)


def register(sub: SubParsers) -> None:
    p = add_command(
        sub, "move", "move a session to another host (same phone, no QR)", move, epilog=MOVE_EPILOG
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("--to", required=True, metavar="HOST", help="the host to run it (its host id)")
    p.add_argument(
        "--timeout", type=float, metavar="SECONDS", help="how long to wait for it to run there"
    )

    p = add_command(sub, "moves", "what moved between hosts, when and why", moves)
    p.add_argument("--host", metavar="HOST", help="only moves from or to this host")
    p.add_argument("-n", "--lines", type=int, default=30, help="how many (default 30)")

    p = add_command(
        sub,
        "failover",
        "turn a session's failover on or off, or change where its auth lives",
        failover,
        epilog=FAILOVER_EPILOG,
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("state", nargs="?", choices=("on", "off"), help="failover on or off")
    p.add_argument("--auth", choices=[str(k) for k in AuthKind], help="local or store")


def move(args: argparse.Namespace) -> int:
    result = _orch().move(args.name, args.to, timeout=args.timeout)
    if args.json:
        output.emit_json(result.to_json())
        return 0
    phone = f" as {result.phone}" if result.phone else ""
    print(
        f"moved {result.name} from {result.from_host} to {result.to_host} (port {result.port}): "
        f"{result.status}{phone} in {result.seconds:.1f} s"
    )
    return 0


def moves(args: argparse.Namespace) -> int:
    found = _orch().moved(args.host, max(1, args.lines))
    if args.json:
        output.emit_json([m.to_json() for m in found])
        return 0
    if not found:
        print("nothing moved" + (f" from or to {args.host}" if args.host else ""))
        return 0
    rows = [
        [
            m.at.strftime("%Y-%m-%d %H:%M:%S"),
            m.session,
            m.kind,
            m.from_host or "-",
            m.to_host or "-",
            m.why,
        ]
        for m in reversed(found)
    ]
    print(output.table(["WHEN (UTC)", "SESSION", "WHAT", "FROM", "TO", "WHY"], rows))
    return 0


def failover(args: argparse.Namespace) -> int:
    if args.state is None and args.auth is None:
        raise InvalidValue("nothing to change: say on or off, or pass --auth local|store")
    view = _orch().set_failover(
        args.name,
        auth=AuthKind(args.auth) if args.auth else None,
        failover=None if args.state is None else args.state == "on",
    )
    if args.json:
        output.emit_json(view.to_json())
    else:
        s = view.session
        print(
            f"{s.name}: auth {s.auth}, failover {'on' if s.failover else 'off'}: {failover_note(s)}"
        )
    return 0
