"""The bot's API keys: never in ai_config (the store is read by more people and tools
than the host), but in the host's settings (OPENAI_KEY / OPENAI_API_KEY, GEMINI_KEY /
GEMINI_API_KEY, written to the 0600 runtime.env) or, per session, in
`secrets/NAME.PROVIDER-key` (0600), which wins. Keys are never printed or logged: only
where a key comes from is ever shown."""

from __future__ import annotations

from pathlib import Path

from ecosystem.errors import InvalidValue
from ecosystem.names import PROVIDERS, validate_name
from ecosystem.paths import StatePaths, write_private
from ecosystem.settings import Settings

MAX_KEY = 1024
ENV_NAMES = {"openai": "OPENAI_KEY", "gemini": "GEMINI_KEY"}


def check_provider(provider: str) -> str:
    if provider not in PROVIDERS:
        raise InvalidValue(f"unknown provider {provider!r}: choose one of {', '.join(PROVIDERS)}")
    return provider


def key_file(paths: StatePaths, name: str, provider: str) -> Path:
    return paths.secrets / f"{validate_name(name)}.{check_provider(provider)}-key"


def check_key(text: str) -> str:
    """The key as typed or piped (surrounding blanks and the newline dropped); refused,
    without echoing it, when it cannot be a key."""
    key = text.strip()
    if not key:
        raise InvalidValue(
            "no key given: pipe it on stdin, e.g. `zapvisor secret NAME openai < key.txt`"
        )
    if len(key) > MAX_KEY:
        raise InvalidValue(f"the key is {len(key)} characters long; at most {MAX_KEY}")
    if not key.isascii() or any(c.isspace() or ord(c) < 33 for c in key):
        raise InvalidValue(
            "the key must be one word of printable ASCII (no spaces or newlines inside)"
        )
    return key


def save_key(paths: StatePaths, name: str, provider: str, text: str) -> Path:
    path = key_file(paths, name, provider)
    write_private(path, check_key(text) + "\n")
    return path


def delete_key(paths: StatePaths, name: str, provider: str) -> bool:
    path = key_file(paths, name, provider)
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed


def resolve_key(paths: StatePaths, settings: Settings, name: str, provider: str) -> str | None:
    """The key the session's bot uses: its own secret file, else the host's setting."""
    try:
        own = key_file(paths, name, provider).read_text("utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        own = ""
    if own:
        return own
    host = settings.openai_key if provider == "openai" else settings.gemini_key
    return host.get_secret_value() if host is not None and host.get_secret_value() else None


def key_source(paths: StatePaths, settings: Settings, name: str, provider: str) -> str | None:
    """Where the key comes from (`secrets/NAME.openai-key`, `OPENAI_KEY`), None when there is
    none: what `show` prints instead of the key."""
    path = key_file(paths, name, provider)
    if path.is_file() and path.stat().st_size > 0:
        return f"secrets/{path.name}"
    host = settings.openai_key if provider == "openai" else settings.gemini_key
    return ENV_NAMES[provider] if host is not None and host.get_secret_value() else None
