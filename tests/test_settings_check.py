"""Settings are read without pydantic (ecosystem/settings_check.py): the values it took
and the messages it gave stay as they were."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecosystem.errors import ConfigError
from ecosystem.health.envwatch import bad_variables, fallback
from ecosystem.settings import make_settings, settings_from_vars, settings_to_env
from ecosystem.settings_check import Secret


@pytest.mark.parametrize(
    ("var", "text", "field", "value"),
    [
        ("BASE_PORT", " 4001 ", "base_port", 4001),
        ("BASE_PORT", "4_001", "base_port", 4001),
        ("BASE_PORT", "4001.0", "base_port", 4001),
        ("ZAPVISOR_HEALTH_INTERVAL", "1e1", "health_interval", 10.0),
        ("ZAPVISOR_MONITOR", "Off", "monitor", False),
        ("ZAPVISOR_MONITOR", "yes", "monitor", True),
        ("ZAPVISOR_QR_COMPACT", "1", "qr_compact", True),
        ("MAX_SESSION_MEMORY_MB", "0", "max_session_memory_mb", None),
        ("ZAPVISOR_ALERT_WEBHOOK_URL", "", "alert_webhook_url", None),
    ],
)
def test_values_read_as_before(var: str, text: str, field: str, value: object) -> None:
    assert getattr(settings_from_vars({var: text}), field) == value


@pytest.mark.parametrize(
    ("var", "text", "message"),
    [
        ("BASE_PORT", "80", "Input should be greater than or equal to 1024 (got '80')"),
        ("BASE_PORT", "70000", "Input should be less than or equal to 65535 (got '70000')"),
        ("BASE_PORT", "4001.5", "Input should be a valid integer, unable to parse string as an"),
        ("ZAPVISOR_START_TIMEOUT", "0", "Input should be greater than 0 (got '0')"),
        ("ZAPVISOR_START_TIMEOUT", "soon", "Input should be a valid number, unable to parse"),
        ("ZAPVISOR_MONITOR", "maybe", "Input should be a valid boolean, unable to interpret"),
        ("ZAPVISOR_BIND", "localhost", "'localhost' is not an IP address (e.g. 127.0.0.1)"),
        ("ZAPVISOR_WEBHOOK_RETRY_SCHEDULE", "0,x", "'0,x' is not a comma-separated list"),
        ("ZAPVISOR_ALERT_WEBHOOK_URL", "ftp://h/x", "must be an http:// or https:// URL"),
    ],
)
def test_errors_name_the_variable_as_before(var: str, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_vars({var: text})
    assert str(info.value).startswith(f"invalid setting {var}: {message}")


def test_secrets_are_masked_and_round_trip(tmp_path: Path) -> None:
    s = make_settings(home=tmp_path, database_url="postgresql://u:pw@h/db", openai_key="sk-1")
    assert "pw@h" not in repr(s) and "sk-1" not in repr(s) and "sk-1" not in str(s.openai_key)
    assert s.database_url == Secret("postgresql://u:pw@h/db") and s.store_kind == "postgres"
    env = settings_to_env(s)
    assert env["OPENAI_KEY"] == "sk-1"
    assert settings_from_vars(env) == s
    with pytest.raises(ConfigError) as info:
        settings_from_vars({"ZAPVISOR_ALERT_WEBHOOK_URL": "ftp://token@h"})
    assert "token" not in str(info.value)


def test_every_bad_variable_is_named(tmp_path: Path) -> None:
    values = {"BASE_PORT": "x", "MAX_SESSIONS": "3", "OPENAI_API_KEY": "", "ZAPVISOR_BIND": "?"}
    assert bad_variables(values, tmp_path) == ("BASE_PORT", "ZAPVISOR_BIND")
    kept = fallback(values, tmp_path, ("BASE_PORT", "ZAPVISOR_BIND"))
    assert (kept.base_port, kept.max_sessions, kept.bind) == (3001, 3, "127.0.0.1")
