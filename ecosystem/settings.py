"""Settings: environment variables and `.env`, validated once at the edge.

Names follow the seeds where they exist (`BASE_PORT`, `MAX_SESSIONS`, `SUPABASE_URL`…);
zapvisor's own settings carry the `ZAPVISOR_` prefix. A misspelt `ZAPVISOR_*` variable is
an error rather than silently ignored: at 2 a.m. a typo must not look like a default.

A plain pydantic model fed by ``load_settings``: every process (each runner, each
command) builds one, and pydantic-settings' import alone cost a runner ~4 MB and a
command ~0.1 s. The sources and their order are its: arguments, then the environment,
then `.env`, then defaults; variable names match whatever their case.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)

from ecosystem.errors import ConfigError


def _default_home() -> Path:
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "zapvisor"


def _env(*names: str) -> Any:
    return AliasChoices(*names)


class Settings(BaseModel):
    """Everything zapvisor reads from its environment (build it with load_settings,
    make_settings or settings_from_vars)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    home: Path = Field(default_factory=_default_home, validation_alias=_env("ZAPVISOR_HOME"))
    """State directory: supervisord's config, socket and logs, `tokens/<session>/`,
    the embedded SQLite store."""

    base_port: int = Field(3001, ge=1024, le=65535, validation_alias=_env("BASE_PORT"))
    """First TCP port handed to a session; each session gets the lowest free one."""

    max_sessions: int = Field(10, ge=1, le=2000, validation_alias=_env("MAX_SESSIONS"))
    """Most sessions this host runs; ports stay within BASE_PORT..BASE_PORT+MAX_SESSIONS-1."""

    bind: str = Field("127.0.0.1", validation_alias=_env("ZAPVISOR_BIND"))
    """Address every runner's HTTP API listens on."""

    host_id: str = Field(
        default_factory=socket.gethostname, validation_alias=_env("ZAPVISOR_HOST_ID")
    )
    """This machine's name in the store: which host owns which session and port."""

    start_timeout: float = Field(
        20.0, gt=0, le=600, validation_alias=_env("ZAPVISOR_START_TIMEOUT")
    )
    """Seconds `create`/`start`/`restart` wait for a runner's /health to answer."""

    sim_qr_seconds: float = Field(
        20.0, gt=0, le=3600, validation_alias=_env("ZAPVISOR_SIM_QR_SECONDS")
    )
    """How often the simulated phone rotates its QR payload."""

    qr_compact: bool = Field(False, validation_alias=_env("ZAPVISOR_QR_COMPACT"))
    """Draw pairing QRs with sextants (2x3 modules per cell: 31x21 for a WhatsApp code,
    fits 80x24) instead of half-blocks (61x31); needs a terminal font with Unicode 13's
    sextants (`qr --compact`, `c` on the QR screen)."""

    api_rate_limit: int = Field(
        100, ge=0, le=1_000_000, validation_alias=_env("ZAPVISOR_API_RATE_LIMIT")
    )
    """Requests per minute a session's API accepts (all routes but /health); 0 = no limit."""

    api_max_body: int = Field(
        10 * 1024 * 1024, ge=1024, le=1024**3, validation_alias=_env("ZAPVISOR_API_MAX_BODY")
    )
    """Largest request body a session's API reads, in bytes (larger ones get 413)."""

    media_allow_private: bool = Field(False, validation_alias=_env("ZAPVISOR_MEDIA_ALLOW_PRIVATE"))
    """Let send-image/send-file fetch media from loopback, private, link-local and other
    non-public addresses (off: an API caller cannot make the runner reach the host's or
    the LAN's internal services, or a cloud metadata endpoint)."""

    webhook_retry_schedule: str = Field(
        "0,5,30,300", validation_alias=_env("ZAPVISOR_WEBHOOK_RETRY_SCHEDULE")
    )
    """Seconds before each delivery attempt of a webhook event (the first is counted from
    the event); after the last failed attempt the event is dead-lettered."""

    webhook_timeout: float = Field(
        10.0, gt=0, le=120, validation_alias=_env("ZAPVISOR_WEBHOOK_TIMEOUT")
    )
    """Seconds a webhook receiver has to answer one delivery."""

    database_url: SecretStr | None = Field(None, validation_alias=_env("ZAPVISOR_DATABASE_URL"))
    """PostgreSQL DSN; when set, sessions live in that database."""

    supabase_url: str | None = Field(None, validation_alias=_env("SUPABASE_URL"))
    """Supabase project URL; when set, sessions live in Supabase."""

    supabase_service_role_key: SecretStr | None = Field(
        None, validation_alias=_env("SUPABASE_SERVICE_ROLE_KEY")
    )
    """Supabase service role key (server side only; never printed)."""

    supabase_anon_key: SecretStr | None = Field(None, validation_alias=_env("SUPABASE_ANON_KEY"))
    """Accepted for compatibility with existing `.env` files; zapvisor does not need it."""

    openai_key: SecretStr | None = Field(
        None, validation_alias=_env("OPENAI_KEY", "OPENAI_API_KEY")
    )
    """The bot's OpenAI key for every session of this host without its own
    (`zapvisor secret NAME openai`); never printed."""

    gemini_key: SecretStr | None = Field(
        None, validation_alias=_env("GEMINI_KEY", "GEMINI_API_KEY")
    )
    """The bot's Gemini key for every session of this host without its own."""

    # -- health monitor (ecosystem/health): its checks, restarts and alerts ----------

    monitor: bool = Field(True, validation_alias=_env("ZAPVISOR_MONITOR"))
    """Run the health monitor inside supervisord (restarts crashed, hung, bloated or
    stuck runners; raises alerts). Off: supervisord restarts crashed runners itself."""

    health_interval: float = Field(
        5.0, ge=0.2, le=300, validation_alias=_env("ZAPVISOR_HEALTH_INTERVAL")
    )
    """Seconds between two health checks of every running session."""

    health_failures: int = Field(3, ge=1, le=100, validation_alias=_env("ZAPVISOR_HEALTH_FAILURES"))
    """Consecutive failed /health checks after which a runner counts as hung and is
    restarted."""

    health_timeout: float = Field(
        2.0, gt=0, le=60, validation_alias=_env("ZAPVISOR_HEALTH_TIMEOUT")
    )
    """Seconds a runner has to answer one /health check."""

    crash_window: float = Field(600.0, gt=0, validation_alias=_env("ZAPVISOR_CRASH_WINDOW"))
    """Seconds of the sliding window in which a session's exits are counted."""

    crash_max_exits: int = Field(
        5, ge=2, le=10_000, validation_alias=_env("ZAPVISOR_CRASH_MAX_EXITS")
    )
    """Exits within the window after which a session is parked (stopped, status error)
    until an operator starts it again."""

    backoff_base: float = Field(1.0, ge=0, le=3600, validation_alias=_env("ZAPVISOR_BACKOFF_BASE"))
    """Delay before restarting after the second exit in the window; it doubles with
    every further exit (the first exit restarts at once)."""

    backoff_max: float = Field(60.0, ge=0, le=86400, validation_alias=_env("ZAPVISOR_BACKOFF_MAX"))
    """The longest delay before a restart."""

    max_session_memory_mb: int | None = Field(
        None, ge=0, validation_alias=_env("MAX_SESSION_MEMORY_MB")
    )
    """Memory cap per session (PSS, MB); a runner over it is restarted gracefully.
    Unset or 0: no cap."""

    reconnecting_timeout: float = Field(
        300.0, gt=0, validation_alias=_env("ZAPVISOR_RECONNECTING_TIMEOUT")
    )
    """Seconds a session may stay `reconnecting` before its runner is restarted."""

    qr_grace: float = Field(60.0, gt=0, validation_alias=_env("ZAPVISOR_QR_GRACE"))
    """Seconds a `waiting_scan` session may go past its QR's expiry without showing a
    fresh QR before its runner is restarted."""

    start_concurrency: int = Field(
        8, ge=1, le=200, validation_alias=_env("ZAPVISOR_START_CONCURRENCY")
    )
    """At most this many runners starting at once when many start together (boot,
    supervisord restart); fewer while they come up slowly (boot.py ``Pace``)."""

    alert_ram_percent: float = Field(
        85.0, gt=0, le=100, validation_alias=_env("ZAPVISOR_ALERT_RAM_PERCENT")
    )
    """Alert when the host's memory in use is above this percentage."""

    alert_cpu_percent: float = Field(
        80.0, gt=0, le=100, validation_alias=_env("ZAPVISOR_ALERT_CPU_PERCENT")
    )
    """Alert when the host's CPU use stays above this percentage..."""

    alert_cpu_seconds: float = Field(
        300.0, ge=0, validation_alias=_env("ZAPVISOR_ALERT_CPU_SECONDS")
    )
    """...for this many seconds."""

    alert_disk_percent: float = Field(
        85.0, gt=0, le=100, validation_alias=_env("ZAPVISOR_ALERT_DISK_PERCENT")
    )
    """Alert when the disk holding ZAPVISOR_HOME is fuller than this percentage."""

    alert_webhook_url: SecretStr | None = Field(
        None, validation_alias=_env("ZAPVISOR_ALERT_WEBHOOK_URL")
    )
    """Where alerts are POSTed (JSON) when raised and when cleared; may hold a token,
    so it is never printed."""

    # -- failover (ecosystem/lease.py, ecosystem/health/failover.py) ----------------

    lease_seconds: float = Field(
        30.0, ge=2, le=3600, validation_alias=_env("ZAPVISOR_LEASE_SECONDS")
    )
    """How long a runner's lease on its session (and a host's heartbeat) lasts without
    renewal. A runner renews every third of it and lets go of WhatsApp when it could not
    for the lease minus a margin; another host takes a session over once its lease and
    its host's heartbeat both ran out. Shorter: faster failover, less patience with a
    slow store."""

    accept_failover: bool = Field(True, validation_alias=_env("ZAPVISOR_ACCEPT_FAILOVER"))
    """Whether this host's monitor takes over sessions of hosts that went silent."""

    failover_ram_floor_mb: int = Field(
        512, ge=0, validation_alias=_env("ZAPVISOR_FAILOVER_RAM_FLOOR_MB")
    )
    """Memory (MB) this host keeps available: it takes over no session that would leave
    it less (each counted at 100 MB)."""

    sim_server_url: SecretStr | None = Field(None, validation_alias=_env("ZAPVISOR_SIM_SERVER_URL"))
    """Sim connector only (tests, demos): a PostgreSQL DSN where the simulated WhatsApp
    server keeps its connections; unset, it uses the store."""

    @field_validator("max_session_memory_mb", mode="after")
    @classmethod
    def _memory_cap(cls, value: int | None) -> int | None:
        return value or None

    @field_validator("alert_webhook_url", mode="after")
    @classmethod
    def _alert_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        parts = urlsplit(value.get_secret_value())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("home", mode="after")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        text = str(value)
        if any(ord(c) < 32 for c in text):
            raise ValueError("must not contain control characters")
        if "%" in text or " ;" in text or " #" in text or text != text.strip():
            # supervisord expands '%' (twice in log paths) and cuts values at ' ;'/' #'
            raise ValueError("must not contain '%', ' ;', ' #' or edge spaces (supervisord)")
        return Path(os.path.abspath(os.path.expanduser(text)))

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        from ecosystem.webhook_events import parse_schedule

        parse_schedule(value)
        return value

    @property
    def webhook_delays(self) -> tuple[float, ...]:
        from ecosystem.webhook_events import parse_schedule

        return parse_schedule(self.webhook_retry_schedule)

    @field_validator("bind")
    @classmethod
    def _ip(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address (e.g. 127.0.0.1)") from None
        return value

    @field_validator("host_id")
    @classmethod
    def _host_id(cls, value: str) -> str:
        if not value or len(value) > 253 or any(ord(c) < 33 for c in value):
            raise ValueError("must be 1-253 printable characters without spaces")
        return value

    @property
    def last_port(self) -> int:
        return self.base_port + self.max_sessions - 1

    @property
    def store_kind(self) -> str:
        if self.supabase_url:
            return "supabase"
        if self.database_url:
            return "postgres"
        return "sqlite"


ENV_NAMES: dict[str, str] = {
    name: str(field.validation_alias.choices[0])  # type: ignore[union-attr]
    for name, field in Settings.model_fields.items()
}
"""Field name → the environment variable that sets it."""

PASSED_THROUGH = frozenset({"ZAPVISOR_BACKUP_PASSPHRASE"})
"""Variables a command reads itself, never settings: never written to runtime.env."""
_KNOWN = frozenset(ENV_NAMES.values()) | PASSED_THROUGH


def _check_unknown(keys: Mapping[str, object], where: str) -> None:
    for key in keys:
        upper = key.upper()
        if upper.startswith("ZAPVISOR_TEST_"):
            continue  # reserved for the test-suite's own opt-in switches
        if upper.startswith("ZAPVISOR_") and upper not in _KNOWN:
            known = ", ".join(sorted(k for k in _KNOWN if k.startswith("ZAPVISOR_")))
            raise ConfigError(f"unknown setting {upper} in {where} (known: {known})")


def _ours(values: Mapping[str, str | None]) -> dict[str, str]:
    """The settings' variables among ``values``, by their canonical (upper-case) name."""
    return {upper: v for k, v in values.items() if v is not None and (upper := k.upper()) in _KNOWN}


def load_settings(env_file: Path | None = Path(".env"), **overrides: Any) -> Settings:
    """Build the one Settings object; errors name the variable that is wrong.

    ``overrides`` use field names (``base_port=…``) and win over the environment, which
    wins over ``env_file``."""
    _check_unknown(os.environ, "the environment")
    values: dict[str, Any] = {}
    if env_file is not None and env_file.is_file():
        from dotenv import dotenv_values

        from_file = dotenv_values(env_file)
        _check_unknown(from_file, str(env_file))
        values.update(_ours(from_file))
    values.update(_ours(os.environ))
    values.update({ENV_NAMES.get(k, k): v for k, v in overrides.items()})
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    err = exc.errors()[0]
    field = str(err["loc"][0]) if err["loc"] else ""
    var = ENV_NAMES.get(field, field)
    value = err.get("input")
    shown = (
        ""
        if isinstance(value, dict) or "key" in var.lower() or "url" in var.lower()
        else (f" (got {value!r})")
    )
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"invalid setting {var}: {msg}{shown}"


def make_settings(**fields: Any) -> Settings:
    """Settings from field names only, ignoring the environment and `.env` (for code
    that must not depend on the caller's shell: tests, benchmarks, remote hosts)."""
    return settings_from_vars({ENV_NAMES[k]: v for k, v in fields.items()})


def settings_from_vars(values: Mapping[str, Any], where: str = "") -> Settings:
    """Settings from variable names (as in `.env`) only, ignoring the environment."""
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc) + (f" (in {where})" if where else "")) from None


def settings_to_env(settings: Settings) -> dict[str, str]:
    """The settings as the environment a runner or host needs to rebuild them."""
    out: dict[str, str] = {}
    for name, var in ENV_NAMES.items():
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        out[var] = str(value)
    return out


# -- runtime.env: the one reader, for every process supervisord starts ------------------


def runtime_values(env_file: Path) -> dict[str, str]:
    """The variables `runtime.env` sets (none when it is missing)."""
    from dotenv import dotenv_values

    if not env_file.is_file():
        return {}
    return {k: v for k, v in dotenv_values(env_file).items() if v is not None}


def runtime_settings(values: Mapping[str, str], home: Path) -> Settings:
    """Settings from `runtime.env`'s ``values`` alone: the environment a process
    inherits from supervisord (whoever started it, with whatever exported) must not
    change them, or the same file could give a runner and the monitor different stores.
    A variable the file leaves out takes its default. Raises ValidationError."""
    return Settings.model_validate({"ZAPVISOR_HOME": str(home), **values})


def read_runtime_settings(env_file: Path, home: Path) -> Settings:
    """Settings exactly as zapvisor last wrote them to `runtime.env`: what runners and
    the health monitor run on."""
    if not env_file.is_file():
        raise ConfigError(f"{env_file} is missing: `zapvisor apply` writes it")
    try:
        return runtime_settings(runtime_values(env_file), home)
    except ValidationError as exc:
        raise ConfigError(f"{env_file} is invalid: {_describe(exc)}") from None
