"""The runner API's requests and answers as pydantic models: the one place their fields
and limits are written. Requests are validated against them (runner/api_routes.py) and
the OpenAPI document is generated from them (runner/openapi.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
)

from ecosystem import jsonvalue
from ecosystem.states import Status
from ecosystem.webhook_events import EVENTS
from runner.http import HTTPError, Request

MAX_TEXT = 65536
MAX_URL = 4096
MAX_FILE_NAME = 255
MAX_NAME = 200
MAX_DROP_SECONDS = 3600

PHONE_SCHEMA = {
    "type": "string",
    "pattern": "^[0-9]{6,20}$",
    "description": "digits with the country code (5511999999999), or a chat id (…@c.us, …@g.us)",
    "example": "5511999999999",
}
Phone = Annotated[Any, WithJsonSchema(PHONE_SCHEMA)]
"""Checked by Recipient.parse in the handler (spaces, `+`, chat ids), with its own
messages; documented as the digits form."""

Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT, pattern=r"\S")]
Caption = Annotated[str, StringConstraints(max_length=MAX_TEXT)]


def _http_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError("is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL")
    return value


MediaUrl = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_URL),
    AfterValidator(_http_url),
    Field(json_schema_extra={"format": "uri", "pattern": "^https?://[A-Za-z0-9.-]+(/|$)"}),
]


def _plain_name(value: str) -> str:
    if "/" in value or "\\" in value or value in (".", ".."):
        raise ValueError("must be a plain file name")
    return value


FileName = Annotated[
    str,
    StringConstraints(max_length=MAX_FILE_NAME),
    AfterValidator(_plain_name),
    Field(json_schema_extra={"pattern": "^[^/\\\\]*$"}),
]


class Body(BaseModel):
    """A request body: a JSON object, types as written (no "5" for 5), unknown keys
    ignored."""

    model_config = ConfigDict(strict=True, extra="ignore", defer_build=True)


class SendMessage(Body):
    phone: Phone
    message: Text
    isGroup: bool = False


class SendImage(Body):
    phone: Phone
    imageUrl: MediaUrl
    caption: Caption = ""
    isGroup: bool = False


class SendFile(Body):
    phone: Phone
    fileUrl: MediaUrl
    fileName: FileName = ""
    caption: Caption = ""
    isGroup: bool = False


class PairPhone(Body):
    phone: Phone


class PutWebhook(Body):
    """Either or both; a field left out is not changed."""

    url: Annotated[str | None, Field(json_schema_extra={"format": "uri"})] = None
    events: list[Literal[EVENTS]] | None = None  # type: ignore[valid-type]


class SimInbound(Body):
    sender: Phone = Field(alias="from")
    body: Text
    name: Annotated[str, StringConstraints(max_length=MAX_NAME)] = ""


class SimDisconnect(Body):
    kind: Literal["network", "phone"] = "network"
    seconds: Annotated[float, Field(ge=0, le=MAX_DROP_SECONDS)] = 1.0


# -- answers ------------------------------------------------------------------------------


class Answer(BaseModel):
    """An answer's documented fields; a connector may add its own."""

    model_config = ConfigDict(extra="allow", defer_build=True)


class Error(Answer):
    success: Literal[False] = False
    error: str
    status: Status | None = None
    reconnectRequired: bool | None = None


class Health(Answer):
    ok: bool
    session: str
    status: Status
    pid: int
    uptime_seconds: float
    lease: str | None = None
    """Where this runner's lease stands: "held (epoch 7)", "waiting: …" (a session that
    can fail over connects only once its host holds the lease), "lapsed: …", "lost: …"."""


class SessionStatus(Answer):
    sessionId: str
    status: Status
    phone: str | None
    connector: str
    connectedAt: str | None
    lastActivity: str | None
    messagesSent: int
    messagesReceived: int
    lastError: str | None
    qrExpiresAt: str | None


class QrCode(Answer):
    """While waiting for a scan: the payload and its PNG; connected: the phone; else
    ``qrCode`` is null."""

    sessionId: str
    status: Status
    qr: str | None = None
    qrCode: str | None = None
    expiresAt: str | None = None
    phone: str | None = None
    message: str | None = None


class Done(Answer):
    success: bool
    message: str | None = None


class SentMessage(Answer):
    success: bool
    id: str
    to: str
    status: str
    timestamp: str


class NumberCheck(Answer):
    phone: str
    valid: bool
    canReceiveMessage: bool | None = None
    isBusiness: bool | None = None


class Contact(Answer):
    id: str
    phone: str
    name: str | None = None
    pushname: str | None = None
    isBusiness: bool | None = None


class Contacts(Answer):
    success: bool
    count: int
    contacts: list[Contact]


class PairCode(Answer):
    success: bool
    sessionId: str
    phone: str
    code: str
    expiresAt: str
    message: str


class WebhookConfig(Answer):
    success: bool
    webhookUrl: str | None
    events: list[str]
    deliveries: dict[str, int]


class SimAnswer(Answer):
    success: bool
    sessionId: str | None = None
    status: Status | None = None
    message: dict[str, Any] | None = None


class PutConfig(Body):
    """Either or both; a config left out is not changed, one given replaces the old."""

    ai_config: dict[str, Any] | None = None
    timing_config: dict[str, Any] | None = None


class BotConfig(Answer):
    success: bool
    ai_config: dict[str, Any]
    timing_config: dict[str, Any]


class SimSent(Answer):
    success: bool
    sent: list[dict[str, Any]]


# -- reading a request --------------------------------------------------------------------


B = TypeVar("B", bound=Body)


def parse(request: Request, model: type[B]) -> B:
    """The request's body as ``model``; a 400 naming the first thing wrong. Parsed
    strictly: nesting past jsonvalue.MAX_DEPTH, NaN and the like are a 400 too (a
    100,000-deep body must not reach the recursion limit as a 500)."""
    try:
        data = jsonvalue.loads(request.body, "the body") if request.body else {}
    except jsonvalue.BadJSON as exc:
        raise HTTPError(400, str(exc)) from None
    if not isinstance(data, dict):
        raise HTTPError(400, "the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise HTTPError(400, _describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    field = ".".join(str(p) for p in err["loc"]) or "the body"
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "missing":
        return f"{field} is required"
    if kind == "string_type":
        return f"{field} must be a string"
    if kind == "bool_type":
        return f"{field} must be true or false"
    if kind in ("float_type", "int_type", "float_parsing"):
        return f"{field} must be a number"
    if kind == "string_too_long":
        return f"{field} is {len(err['input'])} characters; at most {ctx['max_length']}"
    if kind in ("string_too_short", "string_pattern_mismatch") and "max_length" not in ctx:
        return f"{field} must not be empty" if not str(err["input"]).strip() else _plain(err)
    if kind == "literal_error":
        return f"{field} {err['input']!r} is not one of: {ctx['expected']}"
    if kind == "greater_than_equal":
        return f"{field} must be at least {ctx['ge']}"
    if kind == "less_than_equal":
        return f"{field} must be at most {ctx['le']}"
    return _plain(err)


def _plain(err: Any) -> str:
    field = ".".join(str(p) for p in err["loc"]) or "the body"
    return f"{field} {str(err['msg']).removeprefix('Value error, ')}"
