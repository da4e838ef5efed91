"""Settings: environment variables and `.env`, validated once at the edge.

Names follow the seeds where they exist (`BASE_PORT`, `MAX_SESSIONS`, `SUPABASE_URL`…);
zapvisor's own settings carry the `ZAPVISOR_` prefix. A misspelt `ZAPVISOR_*` variable is
an error rather than silently ignored: at 2 a.m. a typo must not look like a default.

A frozen dataclass fed by ``load_settings`` and checked by ``settings_check`` (no
pydantic: every process, each runner and each command, builds one, and pydantic's
import and model building were most of a runner's start). The sources and their order:
arguments, then the environment, then `.env`, then defaults; variable names match
whatever their case. `runtime.env`, what supervisord's programs run on, is read by
``runtime_env``.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ecosystem.dsn import as_url, is_url
from ecosystem.errors import ConfigError
from ecosystem.settings_check import (
    Secret,
    SettingsInvalid,
    build,
    env_names,
    setting,
    setting_vars,
)


def _default_home() -> Path:
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "zapvisor"


def parse_schedule(text: str) -> tuple[float, ...]:
    """`0,5,30,300` → delays (seconds) before webhook attempts 1, 2, 3, 4; then
    dead-letter."""
    try:
        delays = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"{text!r} is not a comma-separated list of seconds") from None
    if not delays or any(d < 0 or d > 86400 for d in delays):
        raise ValueError("each delay must be between 0 and 86400 seconds")
    return delays


def _schedule(value: str) -> str:
    parse_schedule(value)
    return value


def _memory_cap(value: int | None) -> int | None:
    return value or None


def _alert_url(value: Secret | None) -> Secret | None:
    if value is None or not value.get_secret_value():
        return None
    parts = urlsplit(value.get_secret_value())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL")
    return value


def _database_url(value: Secret | None) -> Secret | None:
    """A key=value DSN as the URL every reader takes (see ecosystem/dsn.py)."""
    if value is None or not value.get_secret_value().strip():
        return None
    text = value.get_secret_value().strip()
    if is_url(text):
        return value
    return Secret(as_url(text))


def _absolute_home(value: Path) -> Path:
    text = str(value)
    if any(ord(c) < 32 for c in text):
        raise ValueError("must not contain control characters")
    if "%" in text or " ;" in text or " #" in text or text != text.strip():
        # supervisord expands '%' (twice in log paths) and cuts values at ' ;'/' #'
        raise ValueError("must not contain '%', ' ;', ' #' or edge spaces (supervisord)")
    return Path(os.path.abspath(os.path.expanduser(text)))


def _ip(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address (e.g. 127.0.0.1)") from None
    return value


def _host_id(value: str) -> str:
    if not value or len(value) > 253 or any(ord(c) < 33 for c in value):
        raise ValueError("must be 1-253 printable characters without spaces")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything zapvisor reads from its environment (build it with load_settings,
    make_settings or settings_from_vars)."""

    home: Path = setting("ZAPVISOR_HOME", factory=_default_home, check=_absolute_home)
    """State directory: supervisord's config, socket and logs, `tokens/<session>/`,
    the embedded SQLite store."""

    base_port: int = setting("BASE_PORT", 3001, ge=1024, le=65535)
    """First TCP port handed to a session; each session gets the lowest free one."""

    max_sessions: int = setting("MAX_SESSIONS", 10, ge=1, le=2000)
    """Most sessions this host runs; ports stay within BASE_PORT..BASE_PORT+MAX_SESSIONS-1."""

    bind: str = setting("ZAPVISOR_BIND", "127.0.0.1", check=_ip)
    """Address every runner's HTTP API listens on."""

    host_id: str = setting("ZAPVISOR_HOST_ID", factory=socket.gethostname, check=_host_id)
    """This machine's name in the store: which host owns which session and port."""

    start_timeout: float = setting("ZAPVISOR_START_TIMEOUT", 20.0, gt=0, le=600)
    """Seconds `create`/`start`/`restart` wait for a runner's /health to answer."""

    sim_qr_seconds: float = setting("ZAPVISOR_SIM_QR_SECONDS", 20.0, gt=0, le=3600)
    """How often the simulated phone rotates its QR payload."""

    qr_compact: bool = setting("ZAPVISOR_QR_COMPACT", False)
    """Draw pairing QRs with sextants (2x3 modules per cell: 31x21 for a WhatsApp code,
    fits 80x24) instead of half-blocks (61x31); needs a terminal font with Unicode 13's
    sextants (`qr --compact`, `c` on the QR screen)."""

    api_rate_limit: int = setting("ZAPVISOR_API_RATE_LIMIT", 100, ge=0, le=1_000_000)
    """Requests per minute a session's API accepts (all routes but /health); 0 = no limit."""

    api_max_body: int = setting("ZAPVISOR_API_MAX_BODY", 10 * 1024 * 1024, ge=1024, le=1024**3)
    """Largest request body a session's API reads, in bytes (larger ones get 413)."""

    media_allow_private: bool = setting("ZAPVISOR_MEDIA_ALLOW_PRIVATE", False)
    """Let send-image/send-file fetch media from loopback, private, link-local and other
    non-public addresses (off: an API caller cannot make the runner reach the host's or
    the LAN's internal services, or a cloud metadata endpoint)."""

    webhook_retry_schedule: str = setting(
        "ZAPVISOR_WEBHOOK_RETRY_SCHEDULE", "0,5,30,300", check=_schedule
    )
    """Seconds before each delivery attempt of a webhook event (the first is counted from
    the event); after the last failed attempt the event is dead-lettered."""

    webhook_timeout: float = setting("ZAPVISOR_WEBHOOK_TIMEOUT", 10.0, gt=0, le=120)
    """Seconds a webhook receiver has to answer one delivery."""

    database_url: Secret | None = setting("ZAPVISOR_DATABASE_URL", None, check=_database_url)
    """PostgreSQL DSN (a postgresql:// URL, or libpq's key=value pairs, kept as the same
    URL); when set, sessions live in that database."""

    supabase_url: str | None = setting("SUPABASE_URL", None)
    """Supabase project URL; when set, sessions live in Supabase."""

    supabase_service_role_key: Secret | None = setting("SUPABASE_SERVICE_ROLE_KEY", None)
    """Supabase service role key (server side only; never printed)."""

    supabase_anon_key: Secret | None = setting("SUPABASE_ANON_KEY", None)
    """Accepted for compatibility with existing `.env` files; zapvisor does not need it."""

    openai_key: Secret | None = setting("OPENAI_KEY", None, also=("OPENAI_API_KEY",))
    """The bot's OpenAI key for every session of this host without its own
    (`zapvisor secret NAME openai`); never printed."""

    gemini_key: Secret | None = setting("GEMINI_KEY", None, also=("GEMINI_API_KEY",))
    """The bot's Gemini key for every session of this host without its own."""

    fork_runners: bool = setting("ZAPVISOR_FORK_RUNNERS", True)
    """Start runners as forks of supervisord, which loads their modules once: a start
    skips Python's start-up and imports (~90 ms of CPU each) and the runners share that
    memory. Off: every runner is a fresh `python -m runner`. Takes effect when
    supervisord next starts."""

    # -- health monitor (ecosystem/health): its checks, restarts and alerts ----------

    monitor: bool = setting("ZAPVISOR_MONITOR", True)
    """Run the health monitor inside supervisord (restarts crashed, hung, bloated or
    stuck runners; raises alerts). Off: supervisord restarts crashed runners itself."""

    health_interval: float = setting("ZAPVISOR_HEALTH_INTERVAL", 5.0, ge=0.2, le=300)
    """Seconds between two health checks of every running session."""

    health_failures: int = setting("ZAPVISOR_HEALTH_FAILURES", 3, ge=1, le=100)
    """Consecutive failed /health checks after which a runner counts as hung and is
    restarted."""

    health_timeout: float = setting("ZAPVISOR_HEALTH_TIMEOUT", 2.0, gt=0, le=60)
    """Seconds a runner has to answer one /health check."""

    crash_window: float = setting("ZAPVISOR_CRASH_WINDOW", 600.0, gt=0)
    """Seconds of the sliding window in which a session's exits are counted."""

    crash_max_exits: int = setting("ZAPVISOR_CRASH_MAX_EXITS", 5, ge=2, le=10_000)
    """Exits within the window after which a session is parked (stopped, status error)
    until an operator starts it again."""

    backoff_base: float = setting("ZAPVISOR_BACKOFF_BASE", 1.0, ge=0, le=3600)
    """Delay before restarting after the second exit in the window; it doubles with
    every further exit (the first exit restarts at once)."""

    backoff_max: float = setting("ZAPVISOR_BACKOFF_MAX", 60.0, ge=0, le=86400)
    """The longest delay before a restart."""

    max_session_memory_mb: int | None = setting(
        "MAX_SESSION_MEMORY_MB", None, ge=0, check=_memory_cap
    )
    """Memory cap per session (PSS, MB); a runner over it is restarted gracefully.
    Unset or 0: no cap."""

    reconnecting_timeout: float = setting("ZAPVISOR_RECONNECTING_TIMEOUT", 300.0, gt=0)
    """Seconds a session may stay `reconnecting` before its runner is restarted."""

    qr_grace: float = setting("ZAPVISOR_QR_GRACE", 60.0, gt=0)
    """Seconds a `waiting_scan` session may go past its QR's expiry without showing a
    fresh QR before its runner is restarted."""

    start_concurrency: int = setting("ZAPVISOR_START_CONCURRENCY", 8, ge=1, le=200)
    """At most this many runners starting at once when many start together (boot,
    supervisord restart); fewer while they come up slowly (boot.py ``Pace``)."""

    alert_ram_percent: float = setting("ZAPVISOR_ALERT_RAM_PERCENT", 85.0, gt=0, le=100)
    """Alert when the host's memory in use is above this percentage."""

    alert_cpu_percent: float = setting("ZAPVISOR_ALERT_CPU_PERCENT", 80.0, gt=0, le=100)
    """Alert when the host's CPU use stays above this percentage..."""

    alert_cpu_seconds: float = setting("ZAPVISOR_ALERT_CPU_SECONDS", 300.0, ge=0)
    """...for this many seconds."""

    alert_disk_percent: float = setting("ZAPVISOR_ALERT_DISK_PERCENT", 85.0, gt=0, le=100)
    """Alert when the disk holding ZAPVISOR_HOME is fuller than this percentage."""

    alert_webhook_url: Secret | None = setting("ZAPVISOR_ALERT_WEBHOOK_URL", None, check=_alert_url)
    """Where alerts are POSTed (JSON) when raised and when cleared; may hold a token,
    so it is never printed."""

    # -- failover (ecosystem/lease.py, ecosystem/health/failover.py) ----------------

    lease_seconds: float = setting("ZAPVISOR_LEASE_SECONDS", 30.0, ge=2, le=3600)
    """How long a runner's lease on its session (and a host's heartbeat) lasts without
    renewal. A runner renews every third of it and lets go of WhatsApp when it could not
    for the lease minus a margin; another host takes a session over once its lease and
    its host's heartbeat both ran out. Shorter: faster failover, less patience with a
    slow store."""

    accept_failover: bool = setting("ZAPVISOR_ACCEPT_FAILOVER", True)
    """Whether this host's monitor takes over sessions of hosts that went silent."""

    failover_ram_floor_mb: int = setting("ZAPVISOR_FAILOVER_RAM_FLOOR_MB", 512, ge=0)
    """Memory (MB) this host keeps available: it takes over no session that would leave
    it less (each counted at 100 MB)."""

    sim_server_url: Secret | None = setting("ZAPVISOR_SIM_SERVER_URL", None)
    """Sim connector only (tests, demos): a PostgreSQL DSN where the simulated WhatsApp
    server keeps its connections; unset, it uses the store."""

    @property
    def webhook_delays(self) -> tuple[float, ...]:
        return parse_schedule(self.webhook_retry_schedule)

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


ENV_NAMES: dict[str, str] = env_names(Settings)
"""Field name → the environment variable that sets it."""
_NAMES_OF: dict[str, tuple[str, ...]] = {
    var: names for names in setting_vars(Settings).values() for var in names
}
"""Each variable → every variable of its setting (OPENAI_KEY → OPENAI_KEY, OPENAI_API_KEY)."""

PASSED_THROUGH = frozenset({"ZAPVISOR_BACKUP_PASSPHRASE"})
"""Variables a command reads itself, never settings: never written to runtime.env."""
_KNOWN = frozenset(_NAMES_OF) | PASSED_THROUGH


def _check_unknown(keys: Mapping[str, object], where: str) -> None:
    for key in keys:
        upper = key.upper()
        if upper.startswith("ZAPVISOR_TEST_"):
            continue  # reserved for the test-suite's own opt-in switches
        if upper.startswith("ZAPVISOR_") and upper not in _KNOWN:
            raise ConfigError(f"unknown setting {upper} in {where}: {_did_you_mean(upper)}")


def _did_you_mean(var: str) -> str:
    """The known variables closest to a misspelt one, or where to find them all."""
    from difflib import get_close_matches  # only on this error: commands start quicker

    known = sorted(_KNOWN)
    near = get_close_matches(var, known, n=3, cutoff=0.75)
    bare = var.removeprefix("ZAPVISOR_")
    near += [k for k in get_close_matches(bare, known, n=2, cutoff=0.75) if k not in near]
    if near:
        return f"did you mean {' or '.join(near)}? (the README's Settings lists every one)"
    return "unset it, or see the README's Settings for every setting"


def _ours(values: Mapping[str, str | None]) -> dict[str, str]:
    """The settings' variables among ``values``, by their canonical (upper-case) name."""
    return {upper: v for k, v in values.items() if v is not None and (upper := k.upper()) in _KNOWN}


def _layer(values: dict[str, Any], higher: Mapping[str, Any]) -> None:
    """``higher``'s variables over ``values``: a setting ``higher`` gives under any of
    its names drops what a lower source gave it under another (OPENAI_API_KEY in the
    environment beats OPENAI_KEY in `.env`), as pydantic-settings' sources did."""
    for var in higher:
        for other in _NAMES_OF.get(var, ()):
            values.pop(other, None)
    values.update(higher)


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
    _layer(values, _ours(os.environ))
    _layer(values, {ENV_NAMES.get(k, k): v for k, v in overrides.items()})
    try:
        return build(Settings, values)
    except SettingsInvalid as exc:
        raise ConfigError(exc.describe()) from None


def make_settings(**fields: Any) -> Settings:
    """Settings from field names only, ignoring the environment and `.env` (for code
    that must not depend on the caller's shell: tests, benchmarks, remote hosts)."""
    return settings_from_vars({ENV_NAMES[k]: v for k, v in fields.items()})


def settings_from_vars(values: Mapping[str, Any], where: str = "") -> Settings:
    """Settings from variable names (as in `.env`) only, ignoring the environment."""
    try:
        return build(Settings, values)
    except SettingsInvalid as exc:
        raise ConfigError(exc.describe() + (f" (in {where})" if where else "")) from None


def settings_to_env(settings: Settings) -> dict[str, str]:
    """The settings as the environment a runner or host needs to rebuild them."""
    out: dict[str, str] = {}
    for name, var in ENV_NAMES.items():
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, Secret):
            value = value.get_secret_value()
        out[var] = str(value)
    return out
