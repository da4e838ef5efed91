"""A session's bot: what ``ai_config`` and ``timing_config`` may hold, checked on every
write (CLI, terminal app, runner API, store) so a runner never meets a config it cannot
read. API keys are never part of either: they come from the host's environment or a
session's 0600 secret file (ecosystem/aikeys.py).
"""

from __future__ import annotations

import re
from datetime import time
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ecosystem.names import PROVIDERS as PROVIDERS  # defined there: see names.py
from ecosystem.session import check_webhook_url
from ecosystem.states import Status

DEFAULT_MODELS = {"openai": "gpt-4o-mini", "gemini": "gemini-2.0-flash"}
DEFAULT_BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "gemini": "https://generativelanguage.googleapis.com/v1beta",
}
MAX_PROMPT = 20_000
_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}")
_ASSISTANT = re.compile(r"asst_[A-Za-z0-9]{1,64}")
_CLOCK = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")


class _Strict(BaseModel):
    # the docstrings under the fields are their descriptions: what the config form shows
    model_config = ConfigDict(
        extra="forbid", strict=True, use_attribute_docstrings=True, defer_build=True
    )


class AiConfig(_Strict):
    """How a session answers inbound messages. Every key is optional; ``{}`` (the
    default) means no bot: the session only forwards to its webhook."""

    enabled: bool = False
    """Answer inbound text messages."""
    provider: Literal["openai", "gemini"] = "openai"
    """`openai` (also any OpenAI-compatible endpoint, by ``base_url``) or `gemini`."""
    model: str | None = None
    """The model; None: gpt-4o-mini (openai) or gemini-2.0-flash (gemini)."""
    base_url: str | None = None
    """The API's root, e.g. http://127.0.0.1:11434/v1 for a local OpenAI-compatible
    server; None: the provider's public API."""
    system_prompt: str = ""
    """Instructions sent first with every request."""
    history: int = Field(10, ge=0, le=100)
    """How many earlier messages of the conversation are sent with the new one."""
    assistant_id: str | None = None
    """An OpenAI assistant (`asst_…`): replies come from it (its own instructions and
    model) through the Assistants API instead of chat completions."""
    temperature: float | None = Field(None, ge=0, le=2)
    """How freely the model words its replies (0: the same answer each time); None: the
    provider's default."""
    max_tokens: int | None = Field(None, ge=1, le=32_768)
    """The longest reply, in tokens; None: the provider's default."""
    groups: bool = False
    """Answer in group chats too."""
    timeout_seconds: float = Field(30.0, gt=0, le=300)
    """How long one request to the provider may take."""

    @field_validator("temperature", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        # strict mode refuses an int for a float; 1 is a perfectly good temperature
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("model")
    @classmethod
    def _model(cls, value: str | None) -> str | None:
        if value is not None and not _MODEL.fullmatch(value):
            raise ValueError("must be a model name such as gpt-4o-mini (letters, digits, ._:/@-)")
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            checked = check_webhook_url(value)
        except ValueError:
            raise ValueError(
                f"must be an http:// or https:// URL with a host, got {value!r}"
            ) from None
        if checked and ("?" in checked or "#" in checked or "@" in checked.split("/")[2]):
            raise ValueError(
                "must not carry a query, fragment or user:password (keys go in `zapvisor secret`)"
            )
        return checked.rstrip("/") if checked else None

    @field_validator("system_prompt")
    @classmethod
    def _prompt(cls, value: str) -> str:
        if len(value) > MAX_PROMPT:
            raise ValueError(f"is {len(value)} characters; at most {MAX_PROMPT}")
        return value

    @field_validator("assistant_id")
    @classmethod
    def _assistant(cls, value: str | None) -> str | None:
        if value is not None and not _ASSISTANT.fullmatch(value):
            raise ValueError("must be an OpenAI assistant id (asst_ followed by letters/digits)")
        return value

    @property
    def model_name(self) -> str:
        return self.model or DEFAULT_MODELS[self.provider]

    @property
    def endpoint(self) -> str:
        return self.base_url or DEFAULT_BASE_URLS[self.provider]


class QuietHours(_Strict):
    """No replies from ``start`` until ``end`` (local time of ``tz``; may span midnight)."""

    start: str
    end: str
    tz: str = "UTC"

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not _CLOCK.fullmatch(value):
            raise ValueError(f"must be a time of day as HH:MM (00:00-23:59), got {value!r}")
        return value

    @field_validator("tz")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. America/Sao_Paulo)") from None
        return value

    def covers(self, at: time) -> bool:
        """Whether the local time ``at`` falls inside the quiet hours."""
        start, end = time.fromisoformat(self.start), time.fromisoformat(self.end)
        if start == end:
            return False
        if start < end:
            return start <= at < end
        return at >= start or at < end


class SimFaults(_Strict):
    """Test and demo faults of sim sessions (runner/connectors/sim_faults.py)."""

    crash_after_seconds: float | None = Field(None, ge=0)
    """0: the runner dies as it starts (a session that can never run)."""
    recycle_after_seconds: float | None = Field(None, gt=0)
    allocate_mb: int = Field(0, ge=0, le=4096)
    stuck_status: Status | None = None

    @field_validator("crash_after_seconds", "recycle_after_seconds", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("stuck_status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> Any:
        if value is None or value in set(Status):
            return None if value is None else Status(value)
        raise ValueError(f"must be one of {', '.join(Status)}")


class TimingConfig(_Strict):
    """How the bot paces itself, and the session's outbound limit."""

    reply_delay: tuple[float, float] = (1.0, 3.0)
    """Seconds between the message and the reply, drawn at random in [min, max]
    (a single number: always that long)."""
    typing: bool = True
    """Show "typing…" to the contact while the reply is prepared and delayed."""
    mark_read: bool = False
    """Mark the message read (blue ticks) when the bot takes it."""
    quiet_hours: QuietHours | None = None
    """No replies during these hours (HH:MM to HH:MM in a time zone)."""
    cooldown_seconds: float = Field(0.0, ge=0, le=86_400)
    """After a reply to a contact, messages from them get no reply for this long."""
    outbound_per_minute: int = Field(0, ge=0, le=10_000)
    """Messages the session sends per minute, the bot's replies and the API's sends
    together; over it the API answers 429 and the bot does not reply. 0: no limit."""
    sim: SimFaults | None = None

    @field_validator("reply_delay", mode="before")
    @classmethod
    def _delay(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = [value, value]
        if (
            not isinstance(value, list | tuple)
            or len(value) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        ):
            raise ValueError("must be [min, max] seconds, or one number of seconds")
        low, high = float(value[0]), float(value[1])
        if not 0 <= low <= high <= 600:
            raise ValueError(f"must be 0 <= min <= max <= 600 seconds, got [{low:g}, {high:g}]")
        return (low, high)

    @field_validator("cooldown_seconds", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _describe(config: str, exc: ValidationError) -> str:
    err = exc.errors()[0]
    path = ".".join(str(p) for p in err["loc"])
    where = f"{config}.{path}" if path else config
    if err["type"] == "extra_forbidden":
        model = AiConfig if config == "ai_config" else TimingConfig
        if len(err["loc"]) == 1:
            known = ", ".join(model.model_fields)
            return f"{where}: unknown key (known: {known})"
        return f"{where}: unknown key"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {msg}"


def config_errors(config: str, value: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """Every complaint of ``config``'s model (ai_config, timing_config) about ``value``:
    where (the key path) and why, as a person reads it. Empty when it is valid."""
    model = AiConfig if config == "ai_config" else TimingConfig
    try:
        model.model_validate(value)
    except ValidationError as exc:
        return [
            (
                tuple(err["loc"]),
                "unknown key"
                if err["type"] == "extra_forbidden"
                else str(err["msg"]).removeprefix("Value error, "),
            )
            for err in exc.errors()
        ]
    return []


def parse_ai_config(value: Any) -> AiConfig:
    """The checked ai_config; ValueError naming the field (``ai_config.temperature: …``)."""
    if not isinstance(value, dict):
        raise ValueError("ai_config must be a JSON object")
    try:
        return AiConfig.model_validate(value)
    except ValidationError as exc:
        raise ValueError(_describe("ai_config", exc)) from None


def parse_timing_config(value: Any) -> TimingConfig:
    """The checked timing_config; ValueError naming the field."""
    if not isinstance(value, dict):
        raise ValueError("timing_config must be a JSON object")
    try:
        return TimingConfig.model_validate(value)
    except ValidationError as exc:
        raise ValueError(_describe("timing_config", exc)) from None


def check_ai_config(value: dict[str, Any]) -> dict[str, Any]:
    """What the store keeps: the keys the operator gave, checked and normalised. A null
    is every field's default, so it is dropped (a fleet file, TOML, cannot write one)."""
    return _kept(parse_ai_config(value).model_dump(mode="json", exclude_unset=True))


def check_timing_config(value: dict[str, Any]) -> dict[str, Any]:
    return _kept(parse_timing_config(value).model_dump(mode="json", exclude_unset=True))


def _kept(value: dict[str, Any]) -> dict[str, Any]:
    return {k: _kept(v) if isinstance(v, dict) else v for k, v in value.items() if v is not None}
