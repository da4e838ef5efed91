"""`runtime.env` is read one way by every process supervisord starts: the file alone,
whatever the environment they inherit, so a runner and the health monitor can never
disagree on the store (or anything else) for the same file."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecosystem.health.envwatch import RuntimeEnv
from ecosystem.runtime_env import read_runtime_settings


@pytest.fixture
def inherited(monkeypatch: pytest.MonkeyPatch) -> None:
    """What an operator's shell exported when it started supervisord."""
    monkeypatch.setenv("ZAPVISOR_DATABASE_URL", "postgresql://op:secret@db.example/zv")
    monkeypatch.setenv("SUPABASE_URL", "https://example.supabase.co")
    monkeypatch.setenv("BASE_PORT", "9000")
    monkeypatch.setenv("ZAPVISOR_HEALTH_INTERVAL", "77")


def test_the_runner_and_the_monitor_read_the_same_settings(tmp_path: Path, inherited: None) -> None:
    env_file = tmp_path / "runtime.env"
    env_file.write_text("BASE_PORT=4100\nMAX_SESSIONS=3\n")
    runner = read_runtime_settings(env_file, tmp_path)  # runner/startup.py
    monitor = RuntimeEnv(env_file, tmp_path).load()  # ecosystem/health/listener.py
    for settings in (runner, monitor):
        assert settings.store_kind == "sqlite", "a variable the file leaves out is its default"
        assert settings.database_url is None and settings.supabase_url is None
        assert (settings.base_port, settings.max_sessions) == (4100, 3)
        assert settings.health_interval == 5.0
        assert settings.home == tmp_path


def test_a_bad_file_falls_back_on_the_file_not_the_environment(
    tmp_path: Path, inherited: None
) -> None:
    env_file = tmp_path / "runtime.env"
    env_file.write_text("BASE_PORT=4100\nZAPVISOR_HEALTH_FAILURES=many\n")
    watched = RuntimeEnv(env_file, tmp_path)
    settings = watched.load()
    assert watched.problem is not None
    assert watched.problem.variables == ("ZAPVISOR_HEALTH_FAILURES",)
    assert settings.store_kind == "sqlite" and settings.base_port == 4100
    assert settings.health_failures == 3 and settings.health_interval == 5.0
