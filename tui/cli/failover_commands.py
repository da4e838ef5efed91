"""The handlers of `zapvisor move`, `moves` and `failover` (registered in
tui/cli/failover.py)."""

from __future__ import annotations

import argparse

from ecosystem.errors import InvalidValue
from ecosystem.lease import AuthKind
from ecosystem.moves import failover_note
from ecosystem.orchestrator import Orchestrator
from ecosystem.settings import load_settings
from tui.cli import output


def _orch() -> Orchestrator:
    return Orchestrator(load_settings(), progress=output.progress)


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
