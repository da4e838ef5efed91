"""The naming rule and the settings: what is accepted, and the message when it is not."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecosystem.errors import ConfigError, InvalidName
from ecosystem.names import NAME_RULE, program_name, session_from_program, validate_name
from ecosystem.paths import StatePaths
from ecosystem.settings import load_settings

VALID = re.compile(r"[a-z0-9][a-z0-9_-]{0,47}")


@pytest.mark.parametrize(
    "name",
    [
        "cliente 001",
        "100%",
        "a;b",
        "../etc",
        "..",
        "ação",
        "Cliente",
        "-lead",
        "_x",
        "",
        "a" * 49,
        "a/b",
        "a\nb",
        "a.b",
        "é",
    ],
)
def test_bad_names_are_refused_with_the_rule(name: str) -> None:
    with pytest.raises(InvalidName) as info:
        validate_name(name)
    assert NAME_RULE in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["cliente-001", "a", "0", "a" * 48, "x_y-z9"])
def test_good_names(name: str) -> None:
    assert validate_name(name) == name
    assert session_from_program(program_name(name)) == name


@given(st.text(max_size=60))
def test_any_text_is_either_a_valid_name_or_refused(text: str) -> None:
    if VALID.fullmatch(text):
        assert validate_name(text) == text
    else:
        with pytest.raises(InvalidName):
            validate_name(text)


@given(st.text(max_size=60))
def test_session_paths_never_leave_the_state_dir(text: str) -> None:
    paths = StatePaths(Path("/srv/zv"))
    try:
        folder = paths.token_dir(text)
    except InvalidName:
        return
    assert folder.parent == Path("/srv/zv/tokens")
    assert folder.resolve().is_relative_to(Path("/srv/zv").resolve())
    assert paths.stdout_log(text).parent == Path("/srv/zv/logs")
    assert paths.api_token_file(text).parent == Path("/srv/zv/secrets")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    import os

    for key in list(os.environ):
        if key.startswith(("ZAPVISOR_", "SUPABASE_")) or key in ("BASE_PORT", "MAX_SESSIONS"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults(clean_env: Path) -> None:
    s = load_settings()
    assert (s.base_port, s.max_sessions, s.bind) == (3001, 10, "127.0.0.1")
    assert s.home.name == "zapvisor" and s.home.is_absolute()
    assert s.store_kind == "sqlite"
    assert s.last_port == 3010


def test_env_and_dotenv(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_env / ".env").write_text("BASE_PORT=4001\nMAX_SESSIONS=3\nOPENAI_KEY=sk-unrelated\n")
    monkeypatch.setenv("MAX_SESSIONS", "5")  # the environment wins over .env
    s = load_settings()
    assert (s.base_port, s.max_sessions, s.last_port) == (4001, 5, 4005)


@pytest.mark.parametrize(
    ("var", "value", "expect"),
    [
        ("BASE_PORT", "abc", "BASE_PORT"),
        ("BASE_PORT", "80", "BASE_PORT"),
        ("MAX_SESSIONS", "0", "MAX_SESSIONS"),
        ("ZAPVISOR_BIND", "localhost", "ZAPVISOR_BIND"),
        ("ZAPVISOR_HOME", "/tmp/100%", "ZAPVISOR_HOME"),
        ("ZAPVISOR_HOME", "/tmp/a ;b", "ZAPVISOR_HOME"),
        ("ZAPVISOR_BASEPORT", "3001", "unknown setting ZAPVISOR_BASEPORT"),
    ],
)
def test_bad_settings_name_the_variable(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, var: str, value: str, expect: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=re.escape(expect)) as info:
        load_settings()
    assert "\n" not in str(info.value)


def test_typo_in_dotenv_is_an_error(clean_env: Path) -> None:
    (clean_env / ".env").write_text("ZAPVISOR_HOEM=/tmp/x\n")
    with pytest.raises(ConfigError, match=r"ZAPVISOR_HOEM in .*did you mean ZAPVISOR_HOME"):
        load_settings()


@pytest.mark.parametrize(
    ("var", "hint"),
    [
        ("ZAPVISOR_BASEPORT", "did you mean BASE_PORT?"),
        ("ZAPVISOR_MAX_SESSIONS", "did you mean MAX_SESSIONS?"),
        ("ZAPVISOR_DATABASE_URI", "did you mean ZAPVISOR_DATABASE_URL?"),
        ("ZAPVISOR_XYZ", "unset it, or see the README's Settings for every setting"),
    ],
)
def test_an_unknown_setting_names_the_nearest_ones_not_all(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, var: str, hint: str
) -> None:
    monkeypatch.setenv(var, "1")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value).startswith(f"unknown setting {var} in the environment: {hint}")
    assert "ZAPVISOR_WEBHOOK_RETRY_SCHEDULE" not in str(info.value)  # not the whole list


def test_secret_values_are_not_echoed(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPABASE_URL", "https://x.supabase.co")
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", "super-secret-key")
    s = load_settings()
    assert "super-secret-key" not in repr(s)
    assert s.store_kind == "supabase"


def test_an_alias_in_the_environment_wins_over_dotenv(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each source gives a setting under any of its names (OPENAI_KEY or OPENAI_API_KEY,
    in any case: OPENAI_API_KEY alone is read); the environment beats `.env` whichever
    name either uses, and an argument beats both: a key exported in the shell is not
    shadowed by the file's."""
    for var in ("OPENAI_KEY", "OPENAI_API_KEY", "GEMINI_KEY", "GEMINI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-alone")
    alone = load_settings().openai_key
    assert alone is not None and alone.get_secret_value() == "sk-alone"
    (clean_env / ".env").write_text("OPENAI_KEY=sk-file\nGEMINI_KEY=g-file\n")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("gemini_api_key", "g-env")
    s = load_settings()
    assert s.openai_key is not None and s.openai_key.get_secret_value() == "sk-env"
    assert s.gemini_key is not None and s.gemini_key.get_secret_value() == "g-env"
    given = load_settings(openai_key="sk-arg").openai_key
    assert given is not None and given.get_secret_value() == "sk-arg"
