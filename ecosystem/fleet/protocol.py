"""The wire between the control side and a host's agent: one JSON object per line.

    request   {"id": 7, "method": "restart", "params": {"name": "a"}}
    event     {"id": 7, "event": <json>}          zero or more, before the reply
    reply     {"id": 7, "result": <json>}
              {"id": 7, "error": {"type": "RunnerError", "message": "…", "exit_code": 69}}
    cancel    {"id": 7, "cancel": true}          the client no longer wants a stream
    hello     {"hello": {"version": "0.1.0", "protocol": 1, "host_id": "vps2",
                         "methods": {"restart": 1, …}}}   the agent's first line

Many requests may be in flight on one channel: replies come in any order, matched by id.
An error is raised again on the control side as the same ZapvisorError subclass, with
the same exit code, so a remote `zapvisor restart` fails exactly like a local one.

``PROTOCOL`` changes when the framing changes (then nothing can be said at all). Each
method also has a revision in ``METHODS``, raised when its parameters or its result
change: a host whose revision of a method differs refuses that one action, naming both
versions, while the others keep working.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ecosystem.errors import ProtocolError, RemoteError, ZapvisorError

PROTOCOL = 1

METHODS: dict[str, int] = {
    "list_sessions": 1,
    "show": 1,
    "session": 1,
    "create": 1,
    "start": 1,
    "stop": 1,
    "restart": 1,
    "configure": 1,
    "delete": 1,
    "logout": 1,
    "sim_scan": 1,
    "events": 1,
    "api_token": 1,
    "set_ai_key": 1,
    "ai_key_sources": 1,
    "pair_phone": 1,
    "qr": 1,
    "webhook_secret": 1,
    "webhook_counts": 1,
    "webhook_report": 1,
    "logs": 1,
    "follow_logs": 1,
    "host_logs": 1,
    "follow_host_logs": 1,
    "why_down": 1,
    "host_report": 1,
    "host_facts": 1,
    "health": 1,
    "alerts": 1,
    "alert_history": 1,
    "active_alerts": 1,
    "doctor": 1,
    "apply": 1,
    "process_table": 1,
    "ensure_up": 1,
    "shutdown": 1,
    "hand_over": 1,
    "take_over": 1,
}
"""The Orchestrator methods an agent serves, each with its revision."""

MAX_LINE = 16 * 1024 * 1024
"""Longest line either side reads (a list of hundreds of sessions fits many times)."""


@dataclass(frozen=True)
class Hello:
    version: str
    protocol: int
    host_id: str
    methods: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "hello": {
                "version": self.version,
                "protocol": self.protocol,
                "host_id": self.host_id,
                "methods": self.methods,
            }
        }

    @classmethod
    def from_json(cls, message: dict[str, Any]) -> Hello:
        body = message.get("hello")
        if not isinstance(body, dict):
            raise ProtocolError(f"expected a hello first, got {_short(message)}")
        try:
            return cls(
                version=str(body["version"]),
                protocol=int(body["protocol"]),
                host_id=str(body["host_id"]),
                methods={str(k): int(v) for k, v in (body.get("methods") or {}).items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"a malformed hello ({exc!r}): {_short(message)}") from None


def dump(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def load(line: bytes) -> dict[str, Any]:
    """One line as a message; ProtocolError for anything else (a shell's banner, a
    traceback, a line cut short)."""
    try:
        message = json.loads(line)
    except ValueError:
        raise ProtocolError(f"not a protocol line: {_short(line)}") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"not a protocol message: {_short(message)}")
    return message


def error_body(exc: BaseException) -> dict[str, Any]:
    """What an error says on the wire: its class, its sentence, its exit code."""
    if isinstance(exc, ZapvisorError):
        return {"type": type(exc).__name__, "message": exc.message, "exit_code": exc.exit_code}
    if isinstance(exc, ValueError):  # pydantic's ValidationError: bad input from a caller
        errors = getattr(exc, "errors", None)
        message = _first_line(exc)
        if callable(errors) and errors():
            message = str(errors()[0].get("msg", message)).removeprefix("Value error, ")
        return {"type": "InvalidValue", "message": message, "exit_code": 65}
    return {
        "type": "RemoteError",
        "message": f"unexpected {type(exc).__name__}: {_first_line(exc)}",
        "exit_code": 1,
    }


def _error_classes() -> dict[str, type[ZapvisorError]]:
    found: dict[str, type[ZapvisorError]] = {}
    todo: list[type[ZapvisorError]] = [ZapvisorError]
    while todo:
        cls = todo.pop()
        found.setdefault(cls.__name__, cls)
        todo.extend(cls.__subclasses__())
    return found


def make_error(body: Any, where: str = "") -> ZapvisorError:
    """The exception an error reply stands for, of the same class when it is known here
    (built without its own __init__, which may want other arguments)."""
    if not isinstance(body, dict):
        return ProtocolError(f"a malformed error{where}: {_short(body)}")
    message = str(body.get("message") or "no message")
    try:
        code = int(body.get("exit_code", 1))
    except (TypeError, ValueError):
        code = 1
    cls = _error_classes().get(str(body.get("type")))
    if cls is None:
        return RemoteError(message, code)
    exc = cls.__new__(cls)
    ZapvisorError.__init__(exc, message)
    if exc.exit_code != code:
        exc.exit_code = code
    return exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _short(value: object) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= 120 else text[:117] + "…"
