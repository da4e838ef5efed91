"""`zapvisor hosts add|list|check|remove|upgrade|trust|info`: the machines of the fleet.

The questions (trust this host key? install zapvisor there?) are asked here, on a
terminal only; without one the flags answer them (--trust or --host-key, --install).
The SSH side (asyncssh, ~0.5 s to import) is imported by these commands only, so every
other command starts as fast as before.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ecosystem.settings import load_settings
from ecosystem.views import since
from tui.cli import control, output
from tui.cli.registry import SubParsers, add_command

if TYPE_CHECKING:
    from ecosystem.fleet.admin import HostsAdmin, Outcome
    from ecosystem.fleet.knownhosts import UnknownHostKey
    from ecosystem.fleet.status import HostStatus, HostsView

EPILOG = """\
A fleet is several machines sharing one PostgreSQL or Supabase store, each running its
own supervisord and sessions; this machine reaches the others over SSH (key or
ssh-agent authentication, zapvisor's own known_hosts in the state dir).

examples:
  zapvisor hosts add vps2 deploy@203.0.113.7 --base-port 3001 --max-sessions 40
  zapvisor hosts list                   reachability, version, sessions, CPU/RAM/disk
  zapvisor hosts check vps2             doctor, run on vps2
  zapvisor hosts upgrade vps2           install this machine's zapvisor version there
  zapvisor hosts remove vps2            only once it holds no session"""

ADD_EPILOG = """\
On first contact the host's key fingerprint is shown and you are asked to trust it;
without a terminal pass --host-key SHA256:… (check it on the host with
`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`) or --trust. When zapvisor is not
installed for that user (or is another version) it offers to install this version
there (a venv in ~/.zapvisor, python3 3.11+ needed there); --install says yes."""


def register(sub: SubParsers) -> None:
    parser = sub.add_parser(
        "hosts",
        help="the machines of the fleet: add, list, check, remove, upgrade",
        description="The machines of the fleet, reached over SSH.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="hosts_command", metavar="ACTION", required=True)
    p = add_command(
        actions,
        "add",
        "add a machine to the fleet (installing zapvisor there)",
        add,
        epilog=ADD_EPILOG,
    )
    p.add_argument("name", help="its name in the fleet (becomes its ZAPVISOR_HOST_ID)")
    p.add_argument("target", metavar="USER@ADDRESS", help="the SSH user and address")
    p.add_argument("--port", type=int, default=22, help="SSH port (default 22)")
    p.add_argument(
        "--identity", metavar="FILE", help="private key file (default: ssh-agent, ~/.ssh/id_*)"
    )
    p.add_argument("--base-port", type=int, required=True, help="first session port there")
    p.add_argument("--max-sessions", type=int, required=True, help="most sessions there")
    trust = p.add_mutually_exclusive_group()
    trust.add_argument("--trust", action="store_true", help="trust its host key on first contact")
    trust.add_argument("--host-key", metavar="SHA256:…", help="the host key fingerprint expected")
    p.add_argument("--install", action="store_true", help="install zapvisor there without asking")
    p.add_argument(
        "--env-file",
        type=Path,
        metavar="FILE",
        help="store settings to write there instead of this machine's",
    )
    add_command(actions, "list", "every host: reachable, latency, version, load", list_)
    p = add_command(actions, "check", "run doctor on a host, over SSH", check)
    p.add_argument("name")
    p = add_command(
        actions, "remove", "take a host out of the fleet (it must hold no session)", remove
    )
    p.add_argument("name")
    p = add_command(
        actions, "upgrade", "install this machine's zapvisor version on a host", upgrade
    )
    p.add_argument("name")
    p.add_argument("--force", action="store_true", help="reinstall even the same version")
    p.add_argument(
        "--env-file",
        type=Path,
        metavar="FILE",
        help="store settings to write there instead of this machine's",
    )
    p = add_command(actions, "trust", "trust a host's new SSH key (after a reinstall)", trust_)
    p.add_argument("name")
    p.add_argument("--host-key", metavar="SHA256:…", help="the fingerprint expected")
    add_command(actions, "info", "this machine as a host of the fleet", info)


def _admin() -> HostsAdmin:
    from ecosystem.fleet.admin import HostsAdmin
    from ecosystem.orchestrator import Orchestrator

    return HostsAdmin(Orchestrator(load_settings(), progress=output.progress))


def _view() -> HostsView:
    from ecosystem.fleet.status import HostsView

    return HostsView(control.door())


def _tty() -> bool:
    return sys.stdin.isatty()


def _ask(question: str) -> bool:
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in ("y", "yes")


def _first_contact(exc: UnknownHostKey, where: str) -> str:
    """Show a key met for the first time and ask; its fingerprint when trusted."""
    if not _tty():
        raise exc
    print(f"The host key of {where} is {exc.fingerprint}", file=sys.stderr)
    print(
        "(check it on the host: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)",
        file=sys.stderr,
    )
    if not _ask("Trust it?"):
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
    confirm = _ask if _tty() and not args.install else None
    try:
        outcome = admin.add(request, confirm=confirm)
    except UnknownHostKey as exc:
        key = _first_contact(exc, f"{args.target} (port {args.port})")
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
        outcome = admin.trust(args.name, _first_contact(exc, args.name))
    return _print_outcome(outcome, args.json, f"{args.name}: new host key trusted")


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
