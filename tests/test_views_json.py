"""`list --json` / `show --json` of a session (SessionView.to_json, built as one dict
display) gives what the update-then-select version it replaced gave, for views of every
kind: running, stopped, crashed with a health record, parked, port taken, unreachable,
with a bot and a lease. That version is kept here, as it was, as the reference; and the
JSON text is what ``json.dump`` wrote."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from ecosystem.conversations import BotActivity
from ecosystem.health.model import SessionHealth
from ecosystem.lease import AuthKind, HostBeat, Lease, LeaseInfo
from ecosystem.redact import redact_url
from ecosystem.session import Session
from ecosystem.states import DesiredState, ProcessState, Status
from ecosystem.supctl.rpc import ProcessInfo
from ecosystem.views import JSON_FIELDS, SessionView, lease_json
from tui.cli.output import emit_json


def reference_json(view: SessionView) -> dict[str, Any]:
    """SessionView.to_json as it was."""
    data = view.session.model_dump(mode="json")
    proc = view.process
    data.update(
        process_state=view.process_state,
        pid=view.pid,
        uptime_seconds=view.uptime,
        exit_status=view.exit_status,
        spawn_error=(proc.spawnerr or None) if proc else None,
        why_down=view.why_down,
        port_conflict=view.port_holder,
        restarts=view.restarts,
        webhook_url=redact_url(view.session.webhook_url),
        can_fail_over=view.session.can_fail_over,
        lease=lease_json(view.lease),
        host_unreachable=view.unreachable,
        ai_key=view.ai_key,
    )
    bot = view.bot.model_dump(mode="json") if view.bot else {}
    for key in ("last_reply_at", "last_error", "last_error_at"):
        data[f"ai_{key}"] = bot.get(key)
    h = view.health.model_dump(mode="json") if view.health else {}
    for key in (
        "last_exit_status",
        "last_exit_at",
        "last_restart_reason",
        "parked_at",
        "next_restart_at",
    ):
        data[key] = h.get(key)
    return {key: data.get(key) for key in JSON_FIELDS}


T0 = datetime(2026, 12, 3, 13, 0, 0, 123456, tzinfo=UTC)
NOW = int(T0.timestamp())


def proc(state: ProcessState, **kw: Any) -> ProcessInfo:
    base: dict[str, Any] = {
        "name": "zv-f001",
        "state": state,
        "pid": 4242,
        "start": NOW - 90,
        "now": NOW,
        "stop": NOW - 5,
        "exitstatus": 0,
        "spawnerr": "",
    }
    return ProcessInfo(**{**base, **kw})


def views() -> list[SessionView]:
    session = Session(
        name="f001",
        description="front desk ✓",
        host="vm",
        port=14301,
        connector="sim",
        status=Status.CONNECTED,
        phone="+351900000000",
        webhook_url="https://user:pw@hooks.example/in?token=abc&x=1",
        webhook_events=["message"],
        ai_config={"enabled": True, "model": "m"},
        timing_config={"delay": 1.5},
        messages_sent=3,
        messages_received=4,
        created_at=T0,
        updated_at=T0,
        connected_at=T0,
        last_activity_at=T0,
        auth=AuthKind.STORE,
        device_jid="1:2@s.whatsapp.net",
        api_token_hash="sha256:never-shown",
    )
    stopped = replace(session, desired_state=DesiredState.STOPPED, webhook_url=None)
    health = SessionHealth(
        name="f001",
        restarts=4,
        recent_exits=[T0],
        last_exit_status=3,
        last_exit_at=T0,
        last_restart_reason="exited",
        next_restart_at=T0 + timedelta(seconds=30),
        why_down="exited with status 3; restarting in 30 s",
        updated_at=T0,
    )
    parked = replace(health, parked_at=T0, next_restart_at=None)
    lease = LeaseInfo(
        now=T0,
        lease=Lease(session_name="f001", holder="vm", epoch=2, expires_at=T0, move_to="b"),
        heartbeat=HostBeat(host="vm", beat_at=T0, live=True),
    )
    bot = BotActivity(last_reply_at=T0, last_error="quota", last_error_at=T0)
    return [
        SessionView(session, proc(ProcessState.RUNNING)),
        SessionView(
            session,
            proc(ProcessState.RUNNING),
            bot=bot,
            ai_key="OPENAI_KEY",
            lease=lease,
            health=health,
        ),
        SessionView(stopped, proc(ProcessState.STOPPED)),
        SessionView(session, proc(ProcessState.STARTING, start=NOW + 10)),
        SessionView(session, proc(ProcessState.BACKOFF, spawnerr="can't find command"), health),
        SessionView(session, proc(ProcessState.EXITED, exitstatus=3), health),
        SessionView(session, proc(ProcessState.FATAL, stop=NOW), parked),
        SessionView(session, proc(ProcessState.FATAL), port_holder="held by nginx (pid 42)"),
        SessionView(session, None),
        SessionView(session, None, unreachable="host unreachable since 12:03:04"),
        SessionView(session, None, lease=LeaseInfo(now=T0)),
    ]


def test_to_json_is_the_reference() -> None:
    for i, view in enumerate(views()):
        got = view.to_json()
        want = reference_json(view)
        assert repr(got) == repr(want), i  # same keys, order, values and their types
        assert list(got) == list(JSON_FIELDS)


def test_to_json_values_pinned() -> None:
    """A few values written out, so a change of the reference shows too."""
    got = views()[1].to_json()
    assert got["webhook_url"] == "https://user:***@hooks.example/in?token=***&x=1"
    assert got["auth"] == "store" and got["can_fail_over"] is True
    assert got["created_at"] == "2026-12-03T13:00:00.123456Z"
    assert got["ai_last_error"] == "quota"
    assert got["lease"] is not None and got["lease"]["move_to"] == "b"
    assert "api_token_hash" not in got
    parked = views()[6].to_json()
    assert parked["parked_at"] == "2026-12-03T13:00:00.123456Z"
    assert parked["restarts"] == 4


def test_emit_json_text_is_json_dump() -> None:
    """`--json` prints what ``json.dump(..., ensure_ascii=False, indent=2)`` printed."""
    data = [v.to_json() for v in views()]
    want = io.StringIO()
    json.dump(data, want, ensure_ascii=False, indent=2)
    want.write("\n")
    got = io.StringIO()
    with contextlib.redirect_stdout(got):
        emit_json(data)
    assert got.getvalue() == want.getvalue()
    assert "✓" in got.getvalue()  # not escaped
