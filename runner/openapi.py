"""The OpenAPI 3.0 document a runner serves at `/openapi.json` (written by hand: the
runner has no web framework to generate it, and this keeps it next to the routes)."""

from __future__ import annotations

from typing import Any

from ecosystem import __version__
from ecosystem.settings import Settings
from ecosystem.states import Status
from ecosystem.webhooks import EVENTS

_STR = {"type": "string"}
_BOOL = {"type": "boolean"}
_INT = {"type": "integer"}
_NSTR = {"type": "string", "nullable": True}
_STATUS = {"type": "string", "enum": [str(s) for s in Status]}
_PHONE = {
    "type": "string",
    "pattern": "^[0-9]{6,20}$",
    "description": "digits with the country code (5511999999999), or a chat id (…@c.us, …@g.us)",
    "example": "5511999999999",
}
_ERROR = {
    "type": "object",
    "properties": {
        "success": _BOOL,
        "error": _STR,
        "status": _STATUS,
        "reconnectRequired": _BOOL,
    },
    "required": ["success", "error"],
}
_SENT = {
    "type": "object",
    "properties": {
        "success": _BOOL,
        "id": _STR,
        "to": _STR,
        "status": _STR,
        "timestamp": _STR,
    },
    "required": ["success", "id", "to", "status", "timestamp"],
}
_ANY_OBJECT = {"type": "object", "additionalProperties": True}
_URL = {"type": "string", "format": "uri", "pattern": "^https?://[A-Za-z0-9.-]+(/|$)"}
_TEXT = {"type": "string", "minLength": 1, "maxLength": 65536, "pattern": "\\S"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "invalid input",
        401: "missing or invalid Bearer token",
        404: "unknown route or session",
        409: "not possible in the session's current state",
        413: "body over ZAPVISOR_API_MAX_BODY",
        429: "over ZAPVISOR_API_RATE_LIMIT requests per minute (see Retry-After)",
        501: "not supported by this session's connector",
        502: "WhatsApp or the media URL failed",
        503: "WhatsApp is not connected (or the store is unavailable)",
    }
    return {str(c): _json(_ERROR, text[c]) for c in (401, 429, *codes)}


def _op(
    op_id: str,
    summary: str,
    ok: dict[str, Any],
    *errors: int,
    body: dict[str, Any] | None = None,
    open_route: bool = False,
    params: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op_id, "summary": summary, "responses": {"200": ok}}
    if open_route:
        out["security"] = []
    else:
        out["responses"].update(_errors(*errors))
    if body is not None:
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
        out["responses"]["413"] = _json(_ERROR, "body over ZAPVISOR_API_MAX_BODY")
    if params:
        out["parameters"] = params
    return out


def _obj(required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required}


def document(session: str, settings: Settings) -> dict[str, Any]:
    send = {"phone": _PHONE, "isGroup": _BOOL}
    paths: dict[str, Any] = {
        "/health": {
            "get": _op(
                "health",
                "liveness, without a token",
                _json(_obj(["ok"], ok=_BOOL, session=_STR, status=_STATUS, pid=_INT)),
                open_route=True,
            )
        },
        "/status": {"get": _op("status", "the session's status and counters", _json(_ANY_OBJECT))},
        "/qrcode": {
            "get": _op(
                "qrcode",
                "the pairing QR as a PNG data URL while waiting for a scan",
                _json(_obj(["sessionId", "status"], sessionId=_STR, status=_STATUS, qrCode=_NSTR)),
            )
        },
        "/start": {"post": _op("start", "connect again when disconnected", _json(_ANY_OBJECT))},
        "/logout": {
            "post": _op("logout", "unlink the phone and delete the auth", _json(_ANY_OBJECT))
        },
        "/send-message": {
            "post": _op(
                "sendMessage",
                "send a text message",
                _json(_SENT),
                400,
                501,
                502,
                503,
                body=_obj(["phone", "message"], message=_TEXT, **send),
            )
        },
        "/send-image": {
            "post": _op(
                "sendImage",
                "send an image downloaded from imageUrl",
                _json(_SENT),
                400,
                501,
                502,
                503,
                body=_obj(
                    ["phone", "imageUrl"],
                    imageUrl=_URL,
                    caption=_STR,
                    **send,
                ),
            )
        },
        "/send-file": {
            "post": _op(
                "sendFile",
                "send a document downloaded from fileUrl",
                _json(_SENT),
                400,
                501,
                502,
                503,
                body=_obj(
                    ["phone", "fileUrl"],
                    fileUrl=_URL,
                    fileName={"type": "string", "maxLength": 255, "pattern": "^[^/\\\\]*$"},
                    caption=_STR,
                    **send,
                ),
            )
        },
        "/check-number/{phone}": {
            "get": _op(
                "checkNumber",
                "is this number on WhatsApp",
                _json(
                    _obj(
                        ["phone", "valid"],
                        phone=_STR,
                        valid=_BOOL,
                        canReceiveMessage=_BOOL,
                        isBusiness=_BOOL,
                    )
                ),
                400,
                501,
                502,
                503,
                params=[{"name": "phone", "in": "path", "required": True, "schema": _PHONE}],
            )
        },
        "/contacts": {
            "get": _op(
                "contacts",
                "the session's contacts",
                _json(_obj(["success", "count", "contacts"], success=_BOOL, count=_INT)),
                501,
                502,
                503,
            )
        },
        "/pair-phone": {
            "post": _op(
                "pairPhone",
                "a pairing code to type on the phone, instead of scanning the QR",
                _json(_obj(["code"], code=_STR, phone=_STR, expiresAt=_STR)),
                400,
                409,
                501,
                502,
                body=_obj(["phone"], phone=_PHONE),
            )
        },
        "/webhook": {
            "get": _op("getWebhook", "webhook URL, events and delivery counts", _json(_ANY_OBJECT)),
            "put": _op(
                "putWebhook",
                "set the webhook URL (null removes it) and the events sent (null: all)",
                _json(_ANY_OBJECT),
                400,
                body={
                    "type": "object",
                    "properties": {
                        "url": {"type": "string", "format": "uri", "nullable": True},
                        "events": {
                            "type": "array",
                            "items": {"type": "string", "enum": list(EVENTS)},
                            "nullable": True,
                        },
                    },
                },
            ),
        },
        "/webhook/flush": {
            "post": _op("flushWebhooks", "deliver due webhook events now", _json(_ANY_OBJECT))
        },
        "/sim/scan": {
            "post": _op("simScan", "sim connector: the phone scans the QR", _json(_ANY_OBJECT), 409)
        },
        "/sim/inbound": {
            "post": _op(
                "simInbound",
                "sim connector: a message arrives",
                _json(_ANY_OBJECT),
                400,
                409,
                503,
                body=_obj(["from", "body"], **{"from": _PHONE}, body=_TEXT, name=_STR),
            )
        },
        "/sim/disconnect": {
            "post": _op(
                "simDisconnect",
                "sim connector: the link drops for a while",
                _json(_ANY_OBJECT),
                400,
                409,
                503,
                body=_obj(
                    [],
                    kind={"type": "string", "enum": ["network", "phone"]},
                    seconds={"type": "number", "minimum": 0, "maximum": 3600},
                ),
            )
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": f"zapvisor session {session}",
            "version": __version__,
            "description": (
                "One WhatsApp session's API. Every route but /health and /openapi.json "
                "needs `Authorization: Bearer <token>` (`zapvisor token NAME`), and counts "
                f"against {settings.api_rate_limit} requests per minute. The seed's paths "
                f"work too: /api/sessions/{session}/status is /status."
            ),
        },
        "servers": [{"url": "/"}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    }
