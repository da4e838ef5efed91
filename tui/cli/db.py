"""`zapvisor db status|migrate|sql|copy`: the store's schema, and moving to PostgreSQL."""

from __future__ import annotations

import argparse
import sys

from tui.cli import output
from tui.cli.registry import Formatter, SubParsers, add_command

EPILOG = """\
The store is selected by the environment (or .env): SUPABASE_URL (with
SUPABASE_SERVICE_ROLE_KEY) → supabase; ZAPVISOR_DATABASE_URL → postgres; neither → the
embedded SQLite file in ZAPVISOR_HOME.

examples:
  zapvisor db status                 which store, does it answer, schema version
  zapvisor db migrate                create or upgrade the schema (PostgreSQL/Supabase)
  zapvisor db sql > zapvisor.sql     the same SQL, for Supabase's SQL editor
  zapvisor db copy --to postgres     this machine's SQLite sessions into PostgreSQL"""


def register(sub: SubParsers) -> None:
    parser = sub.add_parser(
        "db",
        help="the store: status, migrate, sql, copy",
        description="The session store: its schema, and moving sessions out of SQLite.",
        epilog=EPILOG,
        formatter_class=Formatter,
    )
    actions = parser.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    add_command(actions, "status", "which store is in use, whether it answers, its schema", status)
    add_command(actions, "migrate", "apply the schema migrations the store still needs", migrate)
    p = add_command(
        actions,
        "sql",
        "print the PostgreSQL migrations the store still needs (for a SQL editor)",
        sql,
        json_flag=False,
    )
    p.add_argument("--all", action="store_true", help="every migration, from an empty database")
    p = add_command(
        actions,
        "copy",
        "copy this machine's SQLite sessions, events, webhook outboxes, health records, "
        "alerts and bot conversations into PostgreSQL or Supabase",
        copy,
        epilog="Stop the runners first (`zapvisor shutdown`); after the copy set the new\n"
        "store's variables and run `zapvisor apply`. The SQLite file is left as it was.",
    )
    p.add_argument("--to", required=True, choices=("postgres", "supabase"), help="target store")


def status(args: argparse.Namespace) -> int:
    from ecosystem import dbadmin  # the store's code: imported when a db command runs
    from ecosystem.settings import load_settings

    settings = load_settings()
    state = dbadmin.status(settings)
    if args.json:
        output.emit_json(state.to_json())
    else:
        print(f"store    {state.where}")
        if state.reachable:
            print(f"answers  yes, in {state.latency_ms:g} ms")
            pending = ", ".join(state.pending) if state.pending else "none"
            print(f"schema   v{state.version} of v{state.latest}; pending: {pending}")
        else:
            print("answers  no")
    if not state.reachable:
        output.error(str(state.error))
        return 69
    return 0


def migrate(args: argparse.Namespace) -> int:
    from ecosystem import dbadmin  # the store's code: imported when a db command runs
    from ecosystem.settings import load_settings

    settings = load_settings()
    where, applied = dbadmin.migrate(settings)
    if args.json:
        output.emit_json({"store": where, "applied": applied})
    elif applied:
        print(f"{where}: applied {', '.join(applied)}")
    else:
        print(f"{where}: schema up to date")
    return 0


def sql(args: argparse.Namespace) -> int:
    from ecosystem import dbadmin  # the store's code: imported when a db command runs
    from ecosystem.settings import load_settings

    settings = load_settings()
    sys.stdout.write(dbadmin.sql_script(settings, everything=args.all))
    return 0


def copy(args: argparse.Namespace) -> int:
    from ecosystem import dbadmin  # the store's code: imported when a db command runs
    from ecosystem.plumbing import current_actor
    from ecosystem.settings import load_settings

    settings = load_settings()
    report = dbadmin.copy(settings, args.to, actor=current_actor())
    if args.json:
        output.emit_json(report.to_json())
    else:
        print(
            f"copied {len(report.sessions)} session(s), {report.events} event(s), "
            f"{report.webhooks} webhook event(s), {report.health} health record(s), "
            f"{report.alerts} alert(s) and {report.conversations} bot conversation(s) "
            f"to {report.target}"
        )
        variable = "ZAPVISOR_DATABASE_URL" if args.to == "postgres" else "SUPABASE_URL"
        print(f"next: keep {variable} set (e.g. in .env), then run `zapvisor apply`")
    return 0
