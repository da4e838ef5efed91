"""The handlers of `zapvisor plan -f FILE`, `apply -f FILE` and `export` (their arguments
are in tui/cli/declare.py and, for apply, tui/cli/session_args.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ecosystem.declare_plan import Plan
from ecosystem.errors import Aborted, InvalidValue
from ecosystem.orchestrator import Orchestrator
from ecosystem.paths import write_private
from tui.cli import control, hosts_commands, output


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
    if found.hosts_left_alone:
        print(
            "  hosts left alone (not in the file; --prune removes those holding no session): "
            + ", ".join(found.hosts_left_alone)
        )
    print(found.summary())


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
    tty = sys.stdin.isatty()
    if not args.json:
        _print(found)
    if found.empty:
        if args.json:
            output.emit_json({"plan": found.to_json(), "done": []})
        return 0
    if not args.yes:
        if not tty:
            raise Aborted("not confirmed: pass --yes to apply this plan (no terminal to ask on)")
        if input("Apply this plan? [y/N] ").strip().lower() not in ("y", "yes"):
            raise Aborted("nothing done")
    done = orch.apply_plan(
        found,
        text,
        where=args.file,
        ask_key=_ask_key if tty else None,
        install=args.install,
        confirm=hosts_commands.ask if tty and not args.install else None,
    )
    if args.json:
        output.emit_json({"plan": found.to_json(), "done": done})
    else:
        print(f"applied: {len(done)} change(s)")
    return 0


def _ask_key(exc: Exception, where: str) -> str:
    from ecosystem.fleet.knownhosts import UnknownHostKey

    assert isinstance(exc, UnknownHostKey)
    return hosts_commands.first_contact(exc, where)


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
