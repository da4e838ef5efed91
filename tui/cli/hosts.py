"""The arguments of `zapvisor hosts add|list|check|remove|upgrade|trust|repoint|failover|info`: the
machines of the fleet. Their handlers are in tui/cli/hosts_commands.py, imported only
when one runs (the core and the SSH side stay out of every other command)."""

from __future__ import annotations

from pathlib import Path

from tui.cli.registry import Formatter, SubParsers, add_command


def _run(function: str) -> str:
    """The handler ``function`` of tui/cli/hosts_commands.py, imported when it runs."""
    return f"tui.cli.hosts_commands:{function}"


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
        formatter_class=Formatter,
    )
    actions = parser.add_subparsers(dest="hosts_command", metavar="ACTION", required=True)
    p = add_command(
        actions,
        "add",
        "add a machine to the fleet (installing zapvisor there)",
        _run("add"),
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
    add_command(actions, "list", "every host: reachable, latency, version, load", _run("list_"))
    p = add_command(actions, "check", "run doctor on a host, over SSH", _run("check"))
    p.add_argument("name")
    p = add_command(
        actions, "remove", "take a host out of the fleet (it must hold no session)", _run("remove")
    )
    p.add_argument("name")
    p = add_command(
        actions, "upgrade", "install this machine's zapvisor version on a host", _run("upgrade")
    )
    p.add_argument("name")
    p.add_argument("--force", action="store_true", help="reinstall even the same version")
    p.add_argument(
        "--env-file",
        type=Path,
        metavar="FILE",
        help="store settings to write there instead of this machine's",
    )
    p = add_command(
        actions, "trust", "trust a host's new SSH key (after a reinstall)", _run("trust_")
    )
    p.add_argument("name")
    p.add_argument("--host-key", metavar="SHA256:…", help="the fingerprint expected")
    p = add_command(
        actions,
        "repoint",
        "reach a host at a new address, SSH port, user or key file (its sessions stay)",
        _run("repoint"),
    )
    p.add_argument("name")
    p.add_argument("target", metavar="USER@ADDRESS")
    p.add_argument("--port", type=int, default=22, help="its SSH port (default 22)")
    p.add_argument("--identity", metavar="FILE", help="a private key file here")
    p = add_command(
        actions,
        "failover",
        "whether a host takes over sessions of silent hosts",
        _run("failover"),
    )
    p.add_argument("name")
    p.add_argument("state", choices=("on", "off"))
    add_command(actions, "info", "this machine as a host of the fleet", _run("info"))
