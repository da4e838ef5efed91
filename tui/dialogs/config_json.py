"""The config form's raw JSON: text to a checked ai_config or timing_config, or why not."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ecosystem import jsonvalue
from ecosystem.botconfig import AiConfig, TimingConfig, check_ai_config, check_timing_config

KEYS = {
    "ai_config": list(AiConfig.model_fields),
    "timing_config": [k for k in TimingConfig.model_fields if k != "sim"],  # sim: tests only
}
"""What the form lists above each JSON editor (the README has what each means)."""
CHECKS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "ai_config": check_ai_config,
    "timing_config": check_timing_config,
}


def checked(value: dict[str, Any], field: str) -> tuple[dict[str, Any] | None, str | None]:
    """(the value as the store keeps it, None) or (None, which key of ``field`` is wrong)."""
    check = CHECKS.get(field)
    if check is None:
        return value, None
    try:
        return check(value), None
    except ValueError as exc:
        return None, str(exc)


def parse_json_object(text: str, field: str = "") -> tuple[dict[str, Any] | None, str | None]:
    """(value, None) or (None, why it is not a JSON object, or which key of the
    session's ``field`` (ai_config, timing_config) is wrong)."""
    if not text.strip():
        return {}, None
    try:
        value = jsonvalue.loads(text, "")
    except jsonvalue.BadJSON as exc:
        return None, exc.reason.removeprefix("is ")
    if not isinstance(value, dict):
        return None, f"must be a JSON object ({{...}}), not {type(value).__name__}"
    return checked(value, field)
