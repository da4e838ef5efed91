"""The runner's routes as data, and the OpenAPI document generated from them: the
request and answer models (runner/api_models.py) give every schema and limit, so the
document cannot drift from what the runner checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ecosystem import __version__
from ecosystem.settings import Settings
from runner.http import Request, Response

if TYPE_CHECKING:
    from pydantic import BaseModel


class _Models:
    """runner.api_models, imported on first use. Its pydantic models validate request
    bodies and shape answers; a runner that is only asked `/health` (most of them, most
    of the time) never loads pydantic: ~13 MB and ~80 ms of its start."""

    def __getattr__(self, name: str) -> Any:
        from runner import api_models

        return getattr(api_models, name)


models = _Models()


def reply(answer: BaseModel) -> Response:
    """An answer model as JSON: the fields it was given, in the API's names."""
    return Response.json(answer.model_dump(mode="json", by_alias=True, exclude_unset=True))


RouteHandler = Callable[[Request, Any], Awaitable[Response]]
"""Called with the request and its body parsed as the route's ``body`` model (None for
a route without one)."""


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    operation: str
    summary: str
    handler: RouteHandler
    answer: str
    """The answer model's name in runner/api_models.py (imported on first use)."""
    body: str | None = None
    """The body model's name there, when the route takes one."""
    errors: tuple[int, ...] = ()
    """Answers besides 200 (and 401/429, which every route behind the token has)."""
    open: bool = False
    """No token needed (and no rate limit)."""
    documented: bool = True


ERRORS = {
    400: "invalid input",
    401: "missing or invalid Bearer token",
    404: "unknown route or session",
    409: "not possible in the session's current state",
    413: "body over ZAPVISOR_API_MAX_BODY",
    429: "over ZAPVISOR_API_RATE_LIMIT requests per minute, or a send over the session's "
    "outbound limit (timing_config.outbound_per_minute); see Retry-After",
    501: "not supported by this session's connector",
    502: "WhatsApp or the media URL failed",
    503: "WhatsApp is not connected (or the store is unavailable)",
}
_REF = "#/components/schemas/{model}"


def _json(ref: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ref}}}


def document(session: str, settings: Settings, routes: Sequence[Route]) -> dict[str, Any]:
    from pydantic.json_schema import models_json_schema

    from runner import api_models as m

    shown = [r for r in routes if r.documented]
    wanted: list[tuple[type[BaseModel], Any]] = [(m.Error, "serialization")]
    for r in shown:
        wanted.append((getattr(m, r.answer), "serialization"))
        if r.body is not None:
            wanted.append((getattr(m, r.body), "validation"))
    refs, defs = models_json_schema(list(dict.fromkeys(wanted)), ref_template=_REF)
    error = refs[(m.Error, "serialization")]
    paths: dict[str, dict[str, Any]] = {}
    for r in shown:
        op: dict[str, Any] = {
            "operationId": r.operation,
            "summary": r.summary,
            "responses": {"200": _json(refs[(getattr(m, r.answer), "serialization")], "OK")},
        }
        codes = list(r.errors)
        if r.open:
            op["security"] = []
        else:
            codes = [401, 429, *codes]
        if r.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": refs[(getattr(m, r.body), "validation")]}
                },
            }
            codes.append(413)
        for code in codes:
            op["responses"][str(code)] = _json(error, ERRORS[code])
        if "{phone}" in r.path:
            op["parameters"] = [
                {"name": "phone", "in": "path", "required": True, "schema": m.PHONE_SCHEMA}
            ]
        paths.setdefault(r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
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
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }
