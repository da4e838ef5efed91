"""`zapvisor hosts …`'s handlers (arguments in tui/cli/hosts.py).

The questions (trust this host key? install zapvisor there?) are asked here, on a
terminal only; without one the flags answer them (--trust or --host-key, --install).
The SSH side (asyncssh, ~0.5 s to import) is imported by these commands only, so every
other command starts as fast as before.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ecosystem.settings import load_settings
from ecosystem.views import since
from tui.cli import control, output

if TYPE_CHECKING:
    from ecosystem.fleet.admin import HostsAdmin, Outcome
    from ecosystem.fleet.knownhosts import UnknownHostKey
    from ecosystem.fleet.status import HostStatus, HostsView


def _admin() -> HostsAdmin:
    from ecosystem.fleet.admin import HostsAdmin
    from ecosystem.orchestrator import Orchestrator

    return HostsAdmin(Orchestrator(load_settings(), progress=output.progress))


def _view() -> HostsView:
    from ecosystem.fleet.status import HostsView

    return HostsView(control.door())


def _tty() -> bool:
    return sys.stdin.isatty()


def ask(question: str) -> bool:
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in ("y", "yes")


def first_contact(exc: UnknownHostKey, where: str) -> str:
    """Show a key met for the first time and ask; its fingerprint when trusted."""
    if not _tty():
        raise exc
    print(f"The host key of {where} is {exc.fingerprint}", file=sys.stderr)
    print(
        "(check it on the host: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)",
        file=sys.stderr,
    )
    if not ask("Trust it?"):
        from ecosystem.errors import Aborted

        raise Aborted("nothing done: the host key was not trusted") from None
    return exc.fingerprint


def _print_outcome(outcome: Outcome, as_json: bool, line: str) -> int:
    if as_json:
        output.emit_json(
            {
                "host": outcome.host.model_dump(mode="json"),
                "installed": outcome.installed,
                "notes": outcome.notes,
            }
        )
    else:
        print(line)
        for note in outcome.notes:
            print(f"  {note}")
    return 0


def add(args: argparse.Namespace) -> int:
    from ecosystem.fleet.admin import AddRequest
    from ecosystem.fleet.knownhosts import UnknownHostKey

    admin = _admin()
    request = AddRequest(
        name=args.name,
        target=args.target,
        port=args.port,
        identity_file=args.identity,
        base_port=args.base_port,
        max_sessions=args.max_sessions,
        trust=args.trust,
        host_key=args.host_key,
        install=args.install,
        env_file=args.env_file,
    )
    confirm = ask if _tty() and not args.install else None
    try:
        outcome = admin.add(request, confirm=confirm)
    except UnknownHostKey as exc:
        key = first_contact(exc, f"{args.target} (port {args.port})")
        request = AddRequest(**{**request.__dict__, "host_key": key})
        outcome = admin.add(request, confirm=confirm)
    what = f"installed zapvisor {outcome.installed}, " if outcome.installed else ""
    return _print_outcome(
        outcome, args.json, f"added {outcome.host.name} ({outcome.host.target}): {what}ready"
    )


def _cells(s: HostStatus, now: datetime) -> list[str]:
    facts = s.facts

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}%"

    return [
        s.name,
        s.target,
        "yes" if s.reachable else "NO",
        "-" if s.latency_ms is None else f"{s.latency_ms:.0f} ms",
        s.version or "-",
        f"{s.sessions}/{s.max_sessions}",
        pct(facts.stats.cpu_percent if facts else None),
        pct(facts.stats.mem_percent if facts else None),
        pct(facts.stats.disk_percent if facts else None),
        "now" if s.reachable else (since(s.last_seen, now) + " ago" if s.last_seen else "never"),
    ]


def list_(args: argparse.Namespace) -> int:
    found = _view().look()
    if args.json:
        output.emit_json([s.to_json() for s in found])
        return 0
    now = datetime.now(UTC)
    headers = [
        "NAME",
        "TARGET",
        "UP",
        "LATENCY",
        "VERSION",
        "SESSIONS",
        "CPU",
        "RAM",
        "DISK",
        "SEEN",
    ]
    print(output.table(headers, [_cells(s, now) for s in found]))
    for s in found:
        if not s.reachable:
            print(f"{s.name}: unreachable: {s.error}")
        elif s.error:
            print(f"{s.name}: {s.error}")
    return 0


def check(args: argparse.Namespace) -> int:

    from ecosystem.doctor import FAIL

    checks = _view().check(args.name)
    failed = any(c.level == FAIL for c in checks)
    if args.json:
        output.emit_json(
            {"host": args.name, "ok": not failed, "checks": [c.to_json() for c in checks]}
        )
    else:
        output.print_checks(checks)
    return 1 if failed else 0


def remove(args: argparse.Namespace) -> int:
    record = _admin().remove(args.name)
    if args.json:
        output.emit_json({"removed": record.name, "target": record.target})
    else:
        print(f"removed {record.name} ({record.target}) from the fleet; the machine is untouched")
    return 0


def upgrade(args: argparse.Namespace) -> int:
    outcome = _admin().upgrade(args.name, force=args.force, env_file=args.env_file)
    line = (
        f"upgraded {outcome.host.name} to zapvisor {outcome.installed}"
        if outcome.installed
        else f"{outcome.host.name}: nothing to do"
    )
    return _print_outcome(outcome, args.json, line)


def trust_(args: argparse.Namespace) -> int:
    from ecosystem.fleet.knownhosts import UnknownHostKey

    admin = _admin()
    try:
        outcome = admin.trust(args.name, args.host_key)
    except UnknownHostKey as exc:
        outcome = admin.trust(args.name, first_contact(exc, args.name))
    return _print_outcome(outcome, args.json, f"{args.name}: new host key trusted")


def repoint(args: argparse.Namespace) -> int:
    record = _admin().repoint(args.name, args.target, args.port, args.identity)
    if args.json:
        output.emit_json({"host": record.model_dump(mode="json")})
    else:
        print(f"{record.name}: reached at {record.target} from now on (sessions untouched)")
    return 0


def failover(args: argparse.Namespace) -> int:
    on = args.state == "on"
    said = _admin().set_accepts_failover(args.name, on)
    if args.json:
        output.emit_json({"host": args.name, "accepts_failover": on, "in_heartbeat": said})
    else:
        then = "" if said else " (its heartbeat says so after its monitor's next check)"
        print(f"{args.name}: {'takes over' if on else 'takes no'} sessions of silent hosts{then}")
    return 0


def info(args: argparse.Namespace) -> int:
    from ecosystem.orchestrator import Orchestrator

    # this machine alone: no links, no SSH library (`hosts add` runs it on the new host)
    facts = Orchestrator(load_settings(), progress=output.progress).host_facts()
    if args.json:
        output.emit_json(facts.to_json())
        return 0
    stats = facts.stats
    rows: list[tuple[str, Any]] = [
        ("host", facts.host_id),
        ("version", facts.version),
        ("store", facts.store + ("" if facts.registered else " (this host is not in its fleet)")),
        ("sessions", f"{facts.sessions} of {facts.max_sessions}, ports from {facts.base_port}"),
        ("supervisord", f"pid {facts.supervisord_pid}" if facts.supervisord_pid else "down"),
        ("cpu", f"{stats.cpu_percent:.0f}% of {stats.cpu_count}, load {stats.load1:.2f}"),
        ("memory", f"{stats.mem_percent:.0f}% of {stats.mem_total // 2**20} MB"),
        ("disk", f"{stats.disk_percent:.0f}% of {stats.disk_total // 2**30} GB"),
    ]
    for key, value in rows:
        print(f"{key:>11}  {value}")
    return 0
