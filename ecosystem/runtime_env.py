"""`runtime.env`: the settings zapvisor last applied, the one reader for every process
supervisord starts (runners, the health monitor)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ecosystem.errors import ConfigError
from ecosystem.settings import Settings
from ecosystem.settings_check import SettingsInvalid, build


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
    A variable the file leaves out takes its default. Raises SettingsInvalid."""
    return build(Settings, {"ZAPVISOR_HOME": str(home), **values})


def read_runtime_settings(env_file: Path, home: Path) -> Settings:
    """Settings exactly as zapvisor last wrote them to `runtime.env`: what runners and
    the health monitor run on."""
    if not env_file.is_file():
        raise ConfigError(f"{env_file} is missing: `zapvisor apply` writes it")
    try:
        return runtime_settings(runtime_values(env_file), home)
    except SettingsInvalid as exc:
        raise ConfigError(f"{env_file} is invalid: {exc.describe()}") from None
