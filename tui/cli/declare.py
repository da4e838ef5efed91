"""`zapvisor plan -f FILE`, `apply -f FILE` and `export`: the fleet as a file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ecosystem.declare import Plan
from ecosystem.errors import Aborted, InvalidValue
from ecosystem.orchestrator import Orchestrator
from ecosystem.paths import write_private
from tui.cli import control, output
from tui.cli.registry import SubParsers, add_command

PLAN_EPILOG = """\
A fleet file declares sessions as [sessions.NAME] tables (host, connector, description,
webhook_url, webhook_events, state, ai_config, timing_config); see the README. Nothing
is changed."""


def register(sub: SubParsers) -> None:
    p = add_command(
        sub, "plan", "what a fleet file would change, changing nothing", plan, epilog=PLAN_EPILOG
    )
    p.add_argument("-f", "--file", metavar="FILE", required=True, help="a fleet file")
    p.add_argument("--prune", action="store_true", help="also delete sessions it omits")

    p = add_command(sub, "export", "write the fleet's sessions as a fleet file", export)
    p.add_argument("-o", "--output", metavar="FILE", help="write it here (default: stdout)")


def _read(path: str) -> str:
    try:
        return Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidValue(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None


def _orch() -> Orchestrator:
    return control.door()


def _print(found: Plan) -> None:
    for step in found.steps:
        print(step.line())
    if found.left_alone:
        print(
            f"  left alone (not in the file; --prune deletes them): {', '.join(found.left_alone)}"
        )
    creates = sum(s.action == "create" for s in found.steps)
    deletes = sum(s.action == "delete" for s in found.steps)
    print(
        f"plan: {creates} to create, {len(found.steps) - creates - deletes} to change, start, "
        f"stop or restart, {deletes} to delete; {len(found.unchanged)} unchanged"
        if found.steps
        else f"no changes: {len(found.unchanged)} session(s) as declared"
    )


def plan(args: argparse.Namespace) -> int:
    found = _orch().plan(_read(args.file), prune=args.prune, where=args.file)
    if args.json:
        output.emit_json(found.to_json())
    else:
        _print(found)
    return 0


def apply_file(args: argparse.Namespace) -> int:
    text = _read(args.file)
    orch = _orch()
    found = orch.plan(text, prune=args.prune, where=args.file)
    if not args.json:
        _print(found)
    if found.empty:
        if args.json:
            output.emit_json({"plan": found.to_json(), "done": []})
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            raise Aborted("not confirmed: pass --yes to apply this plan (no terminal to ask on)")
        if input("Apply this plan? [y/N] ").strip().lower() not in ("y", "yes"):
            raise Aborted("nothing done")
    done = orch.apply_plan(found, text, where=args.file)
    if args.json:
        output.emit_json({"plan": found.to_json(), "done": done})
    else:
        print(f"applied: {len(done)} change(s)")
    return 0


def export(args: argparse.Namespace) -> int:
    text, refs = _orch().export_fleet()
    if args.output:
        write_private(Path(args.output), text)
    if args.json:
        output.emit_json({"file": args.output, "text": text, "env": refs})
        return 0
    if not args.output:
        sys.stdout.write(text)
    else:
        print(f"wrote {args.output}")
    if refs:
        print(
            f"set before plan/apply: {', '.join(refs)} (webhook URLs with a secret)",
            file=sys.stderr,
        )
    return 0
