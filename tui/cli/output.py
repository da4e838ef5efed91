"""How the CLI prints: aligned tables for people, JSON for scripts, errors on one line."""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ecosystem.redact import redact_url
from ecosystem.states import ProcessState

if TYPE_CHECKING:
    from ecosystem.lease import LeaseInfo
    from ecosystem.views import SessionView

if TYPE_CHECKING:
    from ecosystem.doctor import Check

_COLOURS = {
    "connected": "32",
    "waiting_scan": "33",
    "initializing": "36",
    "reconnecting": "33",
    "disconnected": "90",
    "phone_disconnected": "35",
    "error": "31",
    ProcessState.FATAL: "31",
    ProcessState.BACKOFF: "31",
    ProcessState.EXITED: "31",
    ProcessState.STOPPED: "90",
    ProcessState.STARTING: "36",
    "PARKED": "7;31",
    "PORT TAKEN": "1;31",
}


def emit_json(data: Any) -> None:
    """``data`` as indented JSON: made whole, then written once (``json.dump`` writes
    each of its tens of thousands of pieces to stdout on its own)."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def error(message: str) -> None:
    text = " ".join(str(message).split())  # always one line
    print(f"zapvisor: error: {text}", file=sys.stderr)


def warn(message: str) -> None:
    """A caution about what was just done (it still succeeded), on stderr: one line, or
    on a terminal as many as its width needs (a wrapped line breaks mid-word)."""
    text = f"zapvisor: {' '.join(message.split())}"
    if sys.stderr.isatty():
        text = textwrap.fill(text, shutil.get_terminal_size().columns, subsequent_indent="  ")
    print(text, file=sys.stderr)


def progress(message: str) -> None:
    if sys.stderr.isatty():
        print(f"… {message}", file=sys.stderr, flush=True)


def print_checks(checks: Sequence[Check]) -> None:
    """`doctor`'s lines: level, what was checked, the finding, and what to do."""
    for c in checks:
        line = f"{c.level.upper():<4}  {c.name:<18} {c.detail}"
        if c.fix:
            line += f"\n      {'':<18} → {c.fix}"
        print(line)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], colour_col: int = -1) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    tty = sys.stdout.isatty()

    def fmt(row: Sequence[str], header: bool = False) -> str:
        cells = []
        for i, cell in enumerate(row):
            text = cell.ljust(widths[i])
            if tty and not header and i == colour_col and cell in _COLOURS:
                text = f"\x1b[{_COLOURS[cell]}m{text}\x1b[0m"
            cells.append(text)
        return "  ".join(cells).rstrip()

    lines = [fmt(headers, header=True)] + [fmt(r) for r in rows]
    return "\n".join(lines)


def sessions_table(views: Sequence[SessionView]) -> str:
    from ecosystem.views import age, since

    now = datetime.now(UTC)
    rows = [
        [
            v.name,
            v.session.host,
            v.status_label,
            str(v.session.port),
            str(v.pid or "-"),
            age(v.uptime),
            v.session.phone or "-",
            v.session.connector,
            v.session.desired_state,
            since(v.session.last_activity_at, now),
        ]
        for v in views
    ]
    headers = [
        "NAME", "HOST", "STATUS", "PORT", "PID", "UPTIME", "PHONE", "CONNECTOR", "WANTED",
        "ACTIVE",
    ]  # fmt: skip
    text = table(headers, rows, colour_col=2)
    notes = sorted({v.unreachable for v in views if v.unreachable})
    return text + "".join(f"\n{note}" for note in notes)


def session_details(view: SessionView) -> str:
    from ecosystem.views import age, since

    s = view.session
    now = datetime.now(UTC)
    pairs = [
        ("name", s.name),
        ("status", f"{s.status}  (process {view.process_state or 'none'})"),
        ("desired", str(s.desired_state)),
        ("port", str(s.port)),
        ("pid", str(view.pid or "-")),
        ("uptime", age(view.uptime)),
        ("phone", s.phone or "-"),
        ("connector", s.connector),
        ("host", s.host + (f"  ({view.unreachable})" if view.unreachable else "")),
        ("auth", f"{s.auth}: {_failover_note(s)}"),
        ("lease", lease_text(view.lease)),
        ("description", s.description or "-"),
        ("webhook", redact_url(s.webhook_url) or "-"),
        ("messages", f"{s.messages_sent} sent, {s.messages_received} received"),
        ("connected", since(s.connected_at, now) + (" ago" if s.connected_at else "")),
        ("last error", s.last_error or "-"),
        ("ai_config", json.dumps(s.ai_config, ensure_ascii=False)),
        ("timing_config", json.dumps(s.timing_config, ensure_ascii=False)),
    ]
    if view.process and view.process.spawnerr:
        pairs.append(("spawn error", view.process.spawnerr))
    pairs.extend(_health_details(view, now))
    pairs.extend(_bot_details(view, now))
    width = max(len(k) for k, _ in pairs)
    return "\n".join(f"{k.rjust(width)}  {v}" for k, v in pairs)


def _bot_details(view: SessionView, now: datetime) -> list[tuple[str, str]]:
    """The bot's key (where it comes from, never the key), last reply and last error."""
    from ecosystem.views import since

    if not view.session.ai_config.get("enabled"):
        return []
    bot = view.bot
    pairs = [("ai key", view.ai_key or "none: `zapvisor secret NAME openai|gemini` or OPENAI_KEY")]
    if bot is not None and bot.last_reply_at:
        pairs.append(("ai reply", f"{since(bot.last_reply_at, now)} ago"))
    if bot is not None and bot.last_error_at:
        pairs.append(("ai error", f"{since(bot.last_error_at, now)} ago: {bot.last_error}"))
    return pairs


def _health_details(view: SessionView, now: datetime) -> list[tuple[str, str]]:
    """What the health monitor knows: restarts, the last exit, why it is down."""
    from ecosystem.views import since

    h = view.health
    pairs = [("restarts", str(view.restarts))]
    if h is not None and h.last_restart_at:
        pairs[0] = (
            "restarts",
            f"{h.restarts} (last {since(h.last_restart_at, now)} ago: {h.last_restart_reason})",
        )
    if h is not None and h.last_exit_at:
        pairs.append(
            ("last exit", f"status {h.last_exit_status}, {since(h.last_exit_at, now)} ago")
        )
    why = view.why_down
    if why:
        pairs.append(("why down", why))
    if h is not None and h.parked_at:
        pairs.append(("parked", f"{since(h.parked_at, now)} ago; `zapvisor start` un-parks it"))
    elif h is not None and h.next_restart_at:
        wait = max(0.0, (h.next_restart_at - now).total_seconds())
        pairs.append(("next restart", f"in {wait:.0f} s (backoff)"))
    return pairs


def lease_text(info: LeaseInfo | None) -> str:
    """Who holds the session's lease and until when, in words."""
    if info is None or info.lease is None:
        return "never taken (no runner has run it under a lease)"
    lease = info.lease
    left = (lease.expires_at - info.now).total_seconds()
    if lease.offered_to:
        return f"handed over to {lease.offered_to} (epoch {lease.epoch}), waiting for it"
    text = f"{lease.holder or 'nobody'} (epoch {lease.epoch}), "
    text += f"{left:.0f} s left" if left > 0 else f"ended {-left:.0f} s ago"
    if lease.move_to:
        text += f"; moving to {lease.move_to}"
    beat = info.heartbeat
    if beat is not None and not beat.live and beat.beat_at is not None:
        text += f"; {beat.host} silent since {beat.beat_at:%Y-%m-%d %H:%M:%S} UTC"
    return text


def _failover_note(session: Any) -> str:
    from ecosystem.moves import failover_note  # the store's code: only when shown

    return failover_note(session)
