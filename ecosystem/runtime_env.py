"""`runtime.env`: the settings zapvisor last applied, the one reader for every process
supervisord starts (runners, the health monitor)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from ecosystem.errors import ConfigError
from ecosystem.settings import Settings
from ecosystem.settings_check import SettingsInvalid, build

_WRITTEN = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_]*='[^'\\$\r\n]*'\n)*")
"""What `write_runtime_env` writes (supctl/statefiles.py): ``NAME='value'`` lines, each value
without a quote or newline; without a backslash or ``$`` too, the two characters
python-dotenv would read otherwise than literally (an escape, a ``${VAR}``)."""
_LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)='([^']*)'\n")


def runtime_values(env_file: Path) -> dict[str, str]:
    """The variables `runtime.env` sets (none when it is missing).

    A file as zapvisor writes it is read here, as python-dotenv reads it (its import
    is ~3 ms of every runner's start); any other goes to python-dotenv."""
    if not env_file.is_file():
        return {}
    try:
        text = env_file.read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        text = None
    if text is not None and _WRITTEN.fullmatch(text):
        return dict(_LINE.findall(text))
    from dotenv import dotenv_values

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
