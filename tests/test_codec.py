"""Every door result survives a round trip through JSON, as the type it was: what lets
the same Orchestrator call run on another host and come back unchanged."""

from __future__ import annotations

import inspect
import json
from datetime import timedelta
from typing import Any

import pytest

from ecosystem.doctor import Check
from ecosystem.fleet import codec
from ecosystem.hostview import HostReport
from ecosystem.models import Event, NewSession
from ecosystem.orchestrator import Orchestrator
from ecosystem.pairing import PairingCode
from ecosystem.session_access import LogLine, LogTail, QrCode, WebhookReport
from ecosystem.states import Status
from ecosystem.supctl.apply import ApplyResult
from ecosystem.webhook_events import DeliveryState, WebhookEvent
from tests.tui_fixed import ALERTS, HEALTH, NOW, fixed_snapshot

DOOR = [
    (name, fn)
    for name, fn in inspect.getmembers(Orchestrator, inspect.isfunction)
    if not name.startswith("_")
]


def _round_trip(value: Any, tp: Any) -> Any:
    return codec.decode(json.loads(json.dumps(codec.encode(value, tp))), tp)


@pytest.mark.parametrize(("name", "method"), DOOR, ids=[n for n, _m in DOOR])
def test_every_door_method_has_a_wire_type(name: str, method: Any) -> None:
    types = codec.hints(method)
    assert "return" in types, f"Orchestrator.{name} has no return annotation"
    result = types["return"]
    codec._adapter(codec.stream_item(result) or result)
    for param in inspect.signature(method).parameters:
        if param != "self":
            codec._adapter(types[param])


def test_views_and_reports_come_back_equal() -> None:
    snap = fixed_snapshot()
    for view in snap.views:
        back = _round_trip(view, type(view))
        assert back == view
        assert back.to_json() == view.to_json()
        assert back.display_status == view.display_status and back.why_down == view.why_down

    report = HostReport(
        host_id="vps-sp-01",
        version="0.1.0",
        taken_at=NOW,
        supervisord_up=True,
        max_sessions=10,
        base_port=3001,
        processes={v.process.name: v.process for v in snap.views if v.process},
        procs=dict(snap.procs),
        stats=snap.host,
    )
    back = _round_trip(report, HostReport)
    assert back == report
    assert set(back.procs) == set(snap.procs) and all(isinstance(p, int) for p in back.procs)


def test_the_other_results_come_back_equal() -> None:
    samples: list[tuple[Any, Any]] = [
        (QrCode("a", Status.WAITING_SCAN, None, "2@xyz", NOW), QrCode),
        (PairingCode("a", "5511988887777", "ABCD1234", NOW + timedelta(minutes=3)), PairingCode),
        (LogTail([LogLine("hello"), LogLine("boom", stderr=True)], ["/x/wa-a.log"]), LogTail),
        (ApplyResult(added=["wa-a"], booted=True), ApplyResult),
        ([Check("store", "ok", "fine")], list[Check]),
        (list(ALERTS), list[type(ALERTS[0])]),  # type: ignore[misc]
        (dict(HEALTH), dict[str, type(HEALTH["loja-centro"])]),  # type: ignore[misc]
        ([Event(id=1, ts=NOW, session_name="a", actor="op", action="create")], list[Event]),
        (
            WebhookReport(
                "a",
                "https://example.net/hook",
                ["qr_code"],
                {"pending": 1, "delivered": 0, "dead": 0},
                rows=[
                    WebhookEvent(
                        event_id="e1",
                        session_name="a",
                        event="qr_code",
                        payload={"qr": "x"},
                        state=DeliveryState.PENDING,
                        created_at=NOW,
                        next_attempt_at=NOW,
                    )
                ],
            ),
            WebhookReport,
        ),
    ]
    for value, tp in samples:
        assert _round_trip(value, tp) == value


def test_call_arguments_by_name() -> None:
    new = NewSession(name="a", connector="sim", ai_config={"model": "m", "history": 2})
    params = codec.encode_params(Orchestrator.create, (new,), {"wait": False})
    assert json.loads(json.dumps(params)) == params
    back = codec.decode_params(Orchestrator.create, params)
    assert back == {"new": new, "wait": False}
    with pytest.raises(TypeError, match="unexpected parameter"):
        codec.decode_params(Orchestrator.restart, {"name": "a", "purge": True})
