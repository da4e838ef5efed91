"""`zapvisor plan -f FILE` and `export`: the fleet as a file (`apply -f` is in
tui/cli/session_args.py). The handlers are in tui/cli/declare_commands.py, imported only
when one runs."""

from __future__ import annotations

from tui.cli.registry import SubParsers, add_command


def _run(function: str) -> str:
    """The handler ``function`` of tui/cli/declare_commands.py, imported when it runs."""
    return f"tui.cli.declare_commands:{function}"


PLAN_EPILOG = """\
A fleet file declares hosts as [hosts.NAME] tables (target, base_port, max_sessions,
host_key, identity, accepts_failover) and sessions as [sessions.NAME] tables (host,
connector, description, webhook_url, webhook_events, state, auth, failover, ai_config,
timing_config); see the README. Nothing is changed."""


def register(sub: SubParsers) -> None:
    p = add_command(
        sub,
        "plan",
        "what a fleet file would change, changing nothing",
        _run("plan"),
        epilog=PLAN_EPILOG,
    )
    p.add_argument("-f", "--file", metavar="FILE", required=True, help="a fleet file")
    p.add_argument(
        "--prune", action="store_true", help="also delete sessions (and empty hosts) it omits"
    )

    p = add_command(sub, "export", "write the fleet's sessions as a fleet file", _run("export"))
    p.add_argument("-o", "--output", metavar="FILE", help="write it here (default: stdout)")
