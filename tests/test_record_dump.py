"""A record's dump (made once per class from its field names) gives what the loop over
``dataclasses.fields`` it replaced gave: same keys, same order, same conversions, fresh
lists and dicts, EXCLUDE fields left out, in both modes and with include / exclude /
exclude_none. The loop is kept here, as it was, as the reference."""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from ecosystem.conversations import BotActivity
from ecosystem.health.model import SessionHealth
from ecosystem.lease import AuthKind, FleetState, HostBeat, Lease, LeasedSession, LeaseInfo
from ecosystem.record import EXCLUDE, Record, iso, record
from ecosystem.session import Event, Session
from ecosystem.states import DesiredState, Status


def _ref_value(value: Any, as_json: bool) -> Any:
    if isinstance(value, Record):
        return reference_dump(value, mode="json" if as_json else "python")
    if isinstance(value, list | tuple):
        return [_ref_value(v, as_json) for v in value]
    if isinstance(value, dict):
        return {k: _ref_value(v, as_json) for k, v in value.items()}
    if as_json:
        if isinstance(value, datetime):
            return iso(value)
        if isinstance(value, enum.Enum):
            return value.value
    return value


def reference_dump(
    rec: Record,
    *,
    mode: str = "python",
    include: set[str] | None = None,
    exclude: set[str] | None = None,
    exclude_none: bool = False,
) -> dict[str, Any]:
    """Record.model_dump as it was before its dumps were made per class."""
    as_json = mode == "json"
    out: dict[str, Any] = {}
    for f in dataclasses.fields(rec):  # type: ignore[arg-type]
        name = f.name
        if f.metadata.get("exclude") or (include is not None and name not in include):
            continue
        if exclude is not None and name in exclude:
            continue
        value = getattr(rec, name)
        if exclude_none and value is None:
            continue
        out[name] = _ref_value(value, as_json)
    return out


class Colour(enum.Enum):
    RED = 1
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1


class Tag(str):
    """A str subclass: kept as it is (it is not an enum)."""


@record
class Inner(Record):
    at: datetime
    colour: Colour = Colour.RED


@record
class Mixed(Record):
    """Every kind of value a dump converts, and one it leaves out."""

    name: str
    inner: Inner
    maybe: Inner | None = None
    inners: list[Inner] = field(default_factory=list)
    by_key: dict[str, Any] = field(default_factory=dict)
    stamps: list[datetime] = field(default_factory=list)
    level: Level = Level.LOW
    status: Status = Status.CONNECTED
    ratio: float = 0.5
    flag: bool = True
    anything: Any = None
    secret: str | None = field(default=None, metadata=EXCLUDE)


@record
class Empty(Record):
    hidden: str = field(default="x", metadata=EXCLUDE)


class Extended(Inner):
    """A subclass that is not decorated again: the fields of its parent."""


T0 = datetime(2026, 12, 3, 13, 25, 18, 596000, tzinfo=UTC)
PLUS2 = timezone(timedelta(hours=2))


def full_session() -> Session:
    return Session(
        name="f001",
        host="vm",
        port=14301,
        desired_state=DesiredState.STOPPED,
        status=Status.WAITING_SCAN,
        qr_expires_at=T0,
        webhook_url="https://hooks.example/x?token=t",
        webhook_events=["message", "status"],
        ai_config={"enabled": True, "nested": {"at": T0, "list": [1, 2.5, None]}},
        timing_config={"delay": 1.5},
        created_at=T0,
        updated_at=T0.astimezone(PLUS2),
        connected_at=datetime(2026, 1, 1),  # naive: no Z
        auth=AuthKind.STORE,
        device_jid="1:2@s.whatsapp.net",
        api_token_hash="sha256:not-dumped",
    )


def plain_session() -> Session:
    return Session(name="plain", host="vm", port=1, created_at=T0, updated_at=T0)


def samples() -> list[Record]:
    inner = Inner(at=T0, colour=Colour.BLUE)
    return [
        full_session(),
        plain_session(),
        SessionHealth(
            name="f001",
            restarts=3,
            recent_exits=[T0, T0 + timedelta(seconds=5)],
            last_exit_status=-1,
            last_exit_at=T0,
            parked_at=T0,
            why_down="crash loop",
            updated_at=T0,
        ),
        BotActivity(),
        LeaseInfo(
            now=T0,
            lease=Lease(session_name="f001", holder="vm", epoch=4, expires_at=T0),
            heartbeat=HostBeat(host="vm", beat_at=T0, live=True),
        ),
        FleetState(
            now=T0,
            hosts=[HostBeat(host="vm", beat_at=T0, live=True)],
            orphans=[LeasedSession(session_name="a", host="vm", port=2, lease_expires_at=T0)],
        ),
        Event(id=7, ts=T0, session_name="f001", actor="cli", action="start", detail={"a": T0}),
        Mixed(
            name="m",
            inner=inner,
            maybe=inner,
            inners=[inner, Inner(at=T0)],
            by_key={
                "rec": inner,
                "tuple": (T0, Colour.RED),
                "tag": Tag("t"),
                "lvl": Level.LOW,
                "deep": [{"x": T0}],
            },
            stamps=[T0],
            ratio=float("inf"),
            anything=(inner, 1),
            secret="never",
        ),
        Empty(),
        Extended(at=T0),
    ]


@pytest.mark.parametrize("mode", ["python", "json"])
def test_dump_is_the_reference(mode: str) -> None:
    for rec in samples():
        got = rec.model_dump(mode=mode)  # type: ignore[arg-type]
        want = reference_dump(rec, mode=mode)
        assert got == want, type(rec).__name__
        assert list(got) == list(want), type(rec).__name__  # same order
        # same types too (== would let Status.CONNECTED pass for "connected")
        assert repr(got) == repr(want), type(rec).__name__


def test_session_json_dump_pinned() -> None:
    """What `list --json` starts from, written out: a change shows here first."""
    got = full_session().model_dump(mode="json")
    assert "api_token_hash" not in got
    assert got["desired_state"] == "stopped" and type(got["desired_state"]) is str
    assert got["status"] == "waiting_scan" and type(got["status"]) is str
    assert got["auth"] == "store" and type(got["auth"]) is str
    assert got["qr_expires_at"] == "2026-12-03T13:25:18.596000Z"
    assert got["updated_at"] == "2026-12-03T15:25:18.596000+02:00"
    assert got["connected_at"] == "2026-01-01T00:00:00"
    assert got["ai_config"] == {
        "enabled": True,
        "nested": {"at": "2026-12-03T13:25:18.596000Z", "list": [1, 2.5, None]},
    }
    assert list(got)[:5] == ["name", "description", "host", "port", "connector"]
    assert list(got)[-3:] == ["auth", "failover", "device_jid"]
    json.dumps(got)  # all of it is JSON


def test_python_dump_keeps_objects() -> None:
    got = full_session().model_dump()
    assert got["status"] is Status.WAITING_SCAN
    assert got["created_at"] is T0
    assert got["ai_config"]["nested"]["at"] is T0


@pytest.mark.parametrize("mode", ["python", "json"])
def test_dump_copies_lists_and_dicts(mode: str) -> None:
    """The dump's lists and dicts are new ones: changing them leaves the record as it
    was, as before."""
    rec = full_session()
    before = reference_dump(rec, mode=mode)
    got = rec.model_dump(mode=mode)  # type: ignore[arg-type]
    assert got["ai_config"] is not rec.ai_config
    assert got["webhook_events"] is not rec.webhook_events
    got["ai_config"]["nested"]["list"].append("x")
    got["webhook_events"].clear()
    assert reference_dump(rec, mode=mode) == before


@pytest.mark.parametrize("mode", ["python", "json"])
@pytest.mark.parametrize(
    "options",
    [
        {"include": {"name", "port", "secret", "inner"}},
        {"exclude": {"name", "updated_at", "inner"}},
        {"exclude_none": True},
        {"include": {"name", "maybe", "anything"}, "exclude_none": True},
        {"include": set(), "exclude": set()},
    ],
)
def test_dump_options_are_the_reference(mode: str, options: dict[str, Any]) -> None:
    for rec in samples():
        got = rec.model_dump(mode=mode, **options)  # type: ignore[arg-type]
        want = reference_dump(rec, mode=mode, **options)
        assert repr(got) == repr(want), (type(rec).__name__, options)


def test_values_set_after_construction() -> None:
    """A value set without validation (model_copy's update, a plain assignment) is
    dumped by what it is, not by what the field says."""
    rec = plain_session()
    odd = rec.model_copy(update={"port": "14301", "status": "connected", "phone": Tag("1")})
    odd.created_at = "not a datetime"  # type: ignore[assignment]
    for mode in ("python", "json"):
        assert repr(odd.model_dump(mode=mode)) == repr(reference_dump(odd, mode=mode))


def test_pydantic_dumps_a_record_field_the_same() -> None:
    """A pydantic model with a record field (the fleet's codec) dumps it through the
    record's own dump."""
    from pydantic import BaseModel

    class Holder(BaseModel):
        row: Session

    rec = full_session()
    held = Holder(row=rec)
    assert held.model_dump(mode="json")["row"] == reference_dump(rec, mode="json")
    assert json.loads(held.model_dump_json())["row"] == reference_dump(rec, mode="json")
