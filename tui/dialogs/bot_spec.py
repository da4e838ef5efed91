"""The bot's config form, described from its models (ecosystem/botconfig.py): which widget
edits which key, what a field shows for a stored value and what it stores for what was
typed, and the model's complaint about each field. No rule lives here: every check is
the model's own, so the form, the raw JSON, the CLI and the store agree."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic.fields import FieldInfo

from ecosystem.botconfig import (
    DEFAULT_BASE_URLS,
    DEFAULT_MODELS,
    PROVIDERS,
    AiConfig,
    TimingConfig,
    config_errors,
)

Kind = Literal["switch", "choice", "text", "prose", "number", "parts"]
Shown = bool | str | tuple[str, ...]
"""What a field's widget holds: a switch's state, the text typed, or one text per part."""
CONFIGS = ("ai_config", "timing_config")
OTHER = ""
"""The problems key for what no field of the form shows (an unknown key in raw JSON)."""


@dataclass(frozen=True)
class FieldSpec:
    config: str
    key: str
    label: str
    kind: Kind
    hint: str = ""
    placeholder: str = ""
    choices: tuple[str, ...] = ()
    parts: tuple[tuple[str | int, str], ...] = ()
    """For ``parts``: (the list index or sub-key, its label) of each box."""
    default: Any = None

    @property
    def id(self) -> str:
        return f"{self.config}-{self.key}"


def _bounds(info: FieldInfo) -> str:
    """The model's own limits of a number (its ``ge``/``gt`` and ``le`` rules), as a hint."""
    low = high = ""
    for rule in info.metadata:
        if (ge := getattr(rule, "ge", None)) is not None:
            low = f"{ge:g}"
        elif (gt := getattr(rule, "gt", None)) is not None:
            low = f">{gt:g}"
        elif (le := getattr(rule, "le", None)) is not None:
            high = f"{le:g}"
    return f" · {low} to {high}" if low and high else ""


def _field(
    config: str, key: str, kind: Kind, label: str = "", placeholder: str = "", **more: Any
) -> FieldSpec:
    model = AiConfig if config == "ai_config" else TimingConfig
    info = model.model_fields[key]
    default = info.get_default()
    if kind == "number":
        placeholder = placeholder or f"{default:g} (default)"
        placeholder += _bounds(info)
    return FieldSpec(
        config,
        key,
        label or key.replace("_", " "),
        kind,
        hint=(info.description or "").replace("\n", " "),
        placeholder=placeholder,
        default=default,
        **more,
    )


FIELDS: dict[str, tuple[FieldSpec, ...]] = {
    "ai_config": (
        _field("ai_config", "enabled", "switch", "answer messages"),
        _field("ai_config", "provider", "choice", choices=PROVIDERS),
        _field("ai_config", "model", "text", placeholder=" / ".join(DEFAULT_MODELS.values())),
        _field("ai_config", "base_url", "text", "base URL", "the provider's public API"),
        _field("ai_config", "system_prompt", "prose", "system prompt"),
        _field("ai_config", "assistant_id", "text", "assistant id", "asst_… (openai only)"),
        _field("ai_config", "temperature", "number", placeholder="provider's default"),
        _field("ai_config", "max_tokens", "number", "max tokens", "provider's default"),
        _field("ai_config", "history", "number", "history (messages)"),
        _field("ai_config", "groups", "switch", "answer in groups"),
        _field("ai_config", "timeout_seconds", "number", "timeout (seconds)"),
    ),
    "timing_config": (
        _field(
            "timing_config",
            "reply_delay",
            "parts",
            "reply delay (seconds)",
            parts=((0, "min"), (1, "max")),
        ),
        _field("timing_config", "typing", "switch", "typing indicator"),
        _field("timing_config", "mark_read", "switch", "mark as read"),
        _field(
            "timing_config",
            "quiet_hours",
            "parts",
            "quiet hours",
            parts=(("start", "from HH:MM"), ("end", "to HH:MM"), ("tz", "time zone")),
        ),
        _field("timing_config", "cooldown_seconds", "number", "cooldown per contact (s)"),
        _field("timing_config", "outbound_per_minute", "number", "outbound per minute"),
    ),
}
"""The fields of each config, in the form's order. timing_config's ``sim`` (tests and
demos only) is kept as it is, and shown only in the raw JSON."""


def part_placeholder(spec: FieldSpec, part: str | int) -> str:
    if spec.key == "reply_delay":
        return f"{spec.default[int(part)]:g}"
    return "UTC" if part == "tz" else ""


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def shown(spec: FieldSpec, config: Mapping[str, Any]) -> Shown:
    """What ``spec``'s widget shows for the stored ``config``."""
    value = config.get(spec.key)
    if spec.kind == "switch":
        return bool(spec.default if value is None else value)
    if spec.kind == "choice":
        return str(value if value in spec.choices else spec.default)
    if spec.kind == "parts":
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = [value, value]  # a single number: always that long
        if isinstance(value, list | tuple):
            return tuple(_text(value[p]) if p < len(value) else "" for p, _ in _indexed(spec))
        if isinstance(value, dict):
            return tuple(_text(value.get(p)) for p, _ in spec.parts)
        return tuple("" for _ in spec.parts)
    return _text(value)


def _indexed(spec: FieldSpec) -> list[tuple[int, str]]:
    return [(int(p), label) for p, label in spec.parts]


def _number(text: str) -> Any:
    """A number when the text is one; else the text, for the model to refuse in its words."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def stored(spec: FieldSpec, value: Shown, base: Mapping[str, Any]) -> tuple[bool, Any]:
    """(whether the key is kept, its value) for what the widget holds. An empty box is
    the model's default (the key is dropped); a switch or list left at its default is
    only written when the config already had the key."""
    if spec.kind in ("switch", "choice"):
        return (spec.key in base or value != spec.default), value
    if isinstance(value, tuple):
        texts = [t.strip() for t in value]
        if not any(texts):
            return False, None
        if spec.key == "reply_delay":
            return True, [_number(t) if t else None for t in texts]
        return True, {p: t for (p, _), t in zip(spec.parts, texts, strict=True) if t}
    text = str(value) if spec.kind == "prose" else str(value).strip()
    if not text:
        return False, None
    return True, _number(text) if spec.kind == "number" else text


def config_of(config: str, values: Mapping[str, Shown], base: Mapping[str, Any]) -> dict[str, Any]:
    """The config the form holds: ``base`` (the keys the form does not show stay as they
    were) with each field's value, by field key."""
    out = dict(base)
    for spec in FIELDS[config]:
        if spec.key not in values:
            continue
        keep, value = stored(spec, values[spec.key], base)
        if keep:
            out[spec.key] = value
        else:
            out.pop(spec.key, None)
    return out


def problems(config: str, value: dict[str, Any]) -> dict[str, str]:
    """The model's complaints about ``value``, by field key (OTHER: no field shows it);
    a part's complaint names the part."""
    keys = {spec.key: spec for spec in FIELDS[config]}
    found: dict[str, str] = {}
    for loc, why in config_errors(config, value):
        key = str(loc[0]) if loc else OTHER
        spec = keys.get(key)
        if spec is None:
            found.setdefault(OTHER, f"{config}.{'.'.join(map(str, loc))}: {why}")
            continue
        if len(loc) > 1 and spec.kind == "parts":
            why = f"{loc[1]}: {why}"
        found.setdefault(key, why)
    return found


def model_hint(provider: str) -> str:
    return f"{DEFAULT_MODELS[provider]} (default)"


def base_url_hint(provider: str) -> str:
    return DEFAULT_BASE_URLS[provider]


def key_line(
    name: str, provider: str, sources: Mapping[str, str | None] | None, where: str = ""
) -> str:
    """Where the bot's key comes from, in words (never the key): ``host OPENAI_KEY``,
    ``session secret`` or ``missing``; ``where`` names a remote host."""
    on = f" on {where}" if where else ""
    if sources is None:
        return f"{provider} key: looking{on}…"
    source = sources.get(provider)
    if source is None:
        return (
            f"{provider} key: missing{on} — `zapvisor secret {name} {provider}`, "
            f"or {provider.upper()}_KEY in the host's settings"
        )
    if source.startswith("secrets/"):
        return f"{provider} key: session secret{on} ({source})"
    return f"{provider} key: host {source}{on}"
