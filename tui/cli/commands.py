"""One function per command: parse nothing, decide nothing; call the orchestrator, print."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from ecosystem import jsonvalue
from ecosystem.errors import Aborted, InvalidValue, RunnerError
from ecosystem.lease import AuthKind
from ecosystem.logfiles import pretty
from ecosystem.models import NewSession
from ecosystem.states import DesiredState
from ecosystem.views import SessionView
from tui.cli import control, output
from tui.cli.registry import orchestrator as _orch


def _json_object(text: str | None, flag: str) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = jsonvalue.loads(text, flag)
    except jsonvalue.BadJSON as exc:
        raise InvalidValue(str(exc)) from None
    if not isinstance(value, dict):
        raise InvalidValue(f"{flag} must be a JSON object ({{...}}), got {type(value).__name__}")
    return value


def _confirm(action: str, yes: bool) -> None:
    """Ask on a terminal before ``action`` (e.g. "delete session a (port 3001)")."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise Aborted(f"not confirmed: to {action}, pass --yes (no terminal to ask on)")
    answer = input(f"{action[0].upper()}{action[1:]}? [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise Aborted("nothing done")


def _print_view(view: SessionView, as_json: bool, line: str) -> int:
    if as_json:
        output.emit_json(view.to_json())
    else:
        print(line)
    return 0


def create(args: argparse.Namespace) -> int:
    try:
        new = NewSession(
            name=args.name,
            connector=args.connector,
            description=args.description,
            webhook_url=args.webhook_url,
            ai_config=_json_object(args.ai_config, "--ai-config"),
            timing_config=_json_object(args.timing_config, "--timing-config"),
            desired_state=DesiredState.STOPPED if args.stopped else DesiredState.RUNNING,
            auth=AuthKind(args.auth) if args.auth else None,
            failover=args.failover,
        )
    except ValueError as exc:  # RecordError
        raise InvalidValue(_first_error(exc)) from None
    orch = _orch()
    view = orch.create(new, host=args.host)
    # create returns once the runner answers /health, even if supervisord still says
    # STARTING for the rest of startsecs: the operator wants to know "is it up".
    up = f"runner up, pid {view.pid}"
    how = up if view.pid else (view.process_state or "no process").lower()
    where = f"on {view.session.host}, port" if orch.is_fleet else "on port"
    return _print_view(view, args.json, f"created {view.name} {where} {view.session.port} ({how})")


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        msg = str(first.get("msg", exc)).removeprefix("Value error, ")
        return msg
    return str(exc)


def list_(args: argparse.Namespace) -> int:
    views = control.reading_door().list_sessions(host=args.host)
    if args.json:
        output.emit_json([v.to_json() for v in views])
    elif views:
        print(output.sessions_table(views))
    else:
        print("no sessions yet: `zapvisor create NAME` makes one")
    return 0


def show(args: argparse.Namespace) -> int:
    view = _orch().show(args.name)
    if args.json:
        output.emit_json(view.to_json())
    else:
        print(output.session_details(view))
    return 0


def start(args: argparse.Namespace) -> int:
    view = _orch().start(args.name)
    return _print_view(view, args.json, f"started {view.name} (pid {view.pid})")


def stop(args: argparse.Namespace) -> int:
    view = _orch().stop(args.name)
    return _print_view(view, args.json, f"stopped {view.name}")


def restart(args: argparse.Namespace) -> int:
    view = _orch().restart(args.name)
    return _print_view(view, args.json, f"restarted {view.name} (pid {view.pid})")


def config(args: argparse.Namespace) -> int:
    changes: dict[str, Any] = {}
    if args.description is not None:
        changes["description"] = args.description
    if args.webhook_url is not None:
        changes["webhook_url"] = args.webhook_url or None
    if args.ai_config is not None:
        changes["ai_config"] = _json_object(args.ai_config, "--ai-config")
    if args.timing_config is not None:
        changes["timing_config"] = _json_object(args.timing_config, "--timing-config")
    if not changes:
        raise InvalidValue(
            "nothing to change: pass --description, --webhook-url, --ai-config or --timing-config"
        )
    try:
        view = _orch().configure(args.name, changes)
    except ValueError as exc:
        raise InvalidValue(_first_error(exc)) from None
    return _print_view(view, args.json, f"updated {view.name}: {', '.join(sorted(changes))}")


def delete(args: argparse.Namespace) -> int:
    orch = _orch()
    session = orch.session(args.name)
    what = f"delete session {session.name} (port {session.port})"
    if args.purge:
        what += " and its WhatsApp auth"
    _confirm(what, args.yes)
    orch.delete(args.name, purge=args.purge)
    if args.json:
        output.emit_json(
            {"name": session.name, "deleted": True, "purged": args.purge, "port": session.port}
        )
    else:
        print(
            f"deleted {session.name}; port {session.port} is free"
            + (" (auth removed)" if args.purge else "")
        )
    return 0


def logout(args: argparse.Namespace) -> int:
    orch = _orch()
    orch.session(args.name)
    _confirm(f"log {args.name} out (its phone must scan a new QR to connect again)", args.yes)
    view = orch.logout(args.name)
    return _print_view(view, args.json, f"logged {view.name} out")


def qr(args: argparse.Namespace) -> int:
    wait = args.wait or 0.0
    orch = _orch()
    try:
        code = orch.qr(args.name, wait=wait)
    except RunnerError as exc:
        hint = " (--wait waits for one)" if args.wait is None else ""
        raise RunnerError(f"{exc}{hint}") from None
    if code.payload is None:
        if args.json:
            found = code.to_json()
            del found["qr_expires_at"]
            output.emit_json(found)
        else:
            print(f"{code.name} is already connected as {code.phone}")
        return 0
    from ecosystem.qr import png, size_needed, terminal_text  # qrcode and its imaging: only here

    if args.png:
        Path(args.png).write_bytes(png(code.payload))
    if args.json:
        found = code.to_json()
        del found["phone"]
        output.emit_json(found | {"png": args.png})
        return 0
    if args.png:
        print(f"wrote {args.png}")
        return 0
    compact = orch.settings.qr_compact if args.compact is None else args.compact
    tty = sys.stdout.isatty()
    print(terminal_text(code.payload, color=tty and not args.plain, compact=compact))
    screen = shutil.get_terminal_size()
    caption = "WhatsApp > Linked devices > Link a device"
    if code.expires_at:
        caption += f" · expires {code.expires_at.astimezone():%H:%M:%S}"
    named = f"{code.name} · {caption}"
    print(named if len(named) <= screen.columns or not tty else caption)
    if tty:
        cols, rows = size_needed(code.payload, compact=compact)
        rows += 1  # the caption
        if cols > screen.columns or rows > screen.lines:
            other = "--no-compact" if compact else "--compact (31x21, Unicode sextants)"
            output.warn(
                f"this terminal is {screen.columns}x{screen.lines}; the QR above needs "
                f"{cols}x{rows}: enlarge or zoom out, or use {other} or --png FILE"
            )
        elif compact:
            output.warn("compact QR: if it looks broken (no sextants in the font), --no-compact")
    return 0


def sim_scan(args: argparse.Namespace) -> int:
    view = _orch().sim_scan(args.name, wait=10)
    s = view.session
    return _print_view(
        view, args.json, f"{view.name} scanned: {s.status}" + (f" as {s.phone}" if s.phone else "")
    )


def logs(args: argparse.Namespace) -> int:
    if args.all:
        from tui.cli import logs_all

        args.lines = 20 if args.lines is None else args.lines
        return logs_all.run(args)
    extra = [f for f in ("host", "grep", "json") if getattr(args, f)]
    if args.name is None or extra:
        what = "NAME" if args.name is None else "--" + ", --".join(extra)
        raise InvalidValue(f"`logs` needs --all for {what} (or a session's NAME alone)")
    args.lines = 50 if args.lines is None else args.lines
    orch = _orch()
    show = (lambda line: line) if args.raw else pretty
    which = {"stdout": not args.stderr, "stderr": args.stderr}
    if not args.follow:
        found = orch.logs(args.name, lines=args.lines, **which)
        for line in found.lines:
            print(show(line.text))
        for path in found.missing:
            print(f"(no log yet at {path})", file=sys.stderr)
        return 0
    for batch in orch.follow_logs(args.name, backlog=args.lines, **which):
        for line in batch:
            print(show(line.text))
        sys.stdout.flush()
    return 0


def events(args: argparse.Namespace) -> int:
    found = _orch().events(args.name, limit=args.lines)
    if args.json:
        output.emit_json([e.model_dump(mode="json") for e in found])
        return 0
    rows = []
    for e in reversed(found):
        what = e.action
        if e.action == "status":
            what = f"{e.from_status} -> {e.to_status}"
        elif e.detail:
            what += " " + " ".join(f"{k}={v}" for k, v in e.detail.items())
        rows.append([e.ts.strftime("%Y-%m-%d %H:%M:%S"), e.session_name or "-", e.actor, what])
    print(output.table(["WHEN (UTC)", "SESSION", "WHO", "WHAT"], rows) if rows else "no events")
    return 0


def doctor(args: argparse.Namespace) -> int:
    from ecosystem.doctor import FAIL

    orch = _orch()
    checks = orch.doctor()
    failed = any(c.level == FAIL for c in checks)
    if args.json:
        output.emit_json(
            {
                "ok": not failed,
                "store": orch.settings.store_kind,
                "home": str(orch.paths.home),
                "checks": [c.to_json() for c in checks],
            }
        )
    else:
        output.print_checks(checks)
    return 1 if failed else 0


def apply(args: argparse.Namespace) -> int:
    if args.file:
        from tui.cli import declare_commands

        return declare_commands.apply_file(args)
    if args.prune or args.yes or args.install:
        raise InvalidValue("--prune, --yes and --install go with -f FILE")
    result = _orch().apply()
    if args.json:
        output.emit_json(result.__dict__)
    else:
        print(
            f"added {len(result.added)}, changed {len(result.changed)}, "
            f"removed {len(result.removed)}, started {len(result.started)}"
            + (" (supervisord started)" if result.booted else "")
        )
    return 0


def shutdown(args: argparse.Namespace) -> int:
    was_up = _orch().shutdown()
    if args.json:
        output.emit_json({"stopped": was_up})
    else:
        print("supervisord and every runner stopped" if was_up else "supervisord was not running")
    return 0


def ctl(args: argparse.Namespace) -> int:
    import subprocess

    orch = _orch()
    orch.ensure_up()
    cmd = [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(orch.paths.conf)]
    return subprocess.call([*cmd, *(args.ctl_args or ["status"])])


def open_app(_: argparse.Namespace | None = None) -> int:
    """The terminal app; textual is imported only here, so headless commands stay fast."""
    from tui.app import run_app

    return run_app()
