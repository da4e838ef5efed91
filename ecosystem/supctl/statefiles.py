"""The two small files an apply writes beside supervisord's config: `runtime.env` (the
settings runners and the monitor start with) and `deferred.json` (programs left on an
old entry).

Apart from apply.py so that a start, stop or restart, which read or rewrite them,
does not import the config's renderer and checker (~12 ms of a short command)."""

from __future__ import annotations

import json

from ecosystem.errors import SupervisorError
from ecosystem.paths import StatePaths, write_private
from ecosystem.settings import Settings, settings_to_env


def write_runtime_env(paths: StatePaths, settings: Settings) -> None:
    """`runtime.env`, the settings runners and the monitor start with, when it changed."""
    env = "".join(f"{k}={dotenv_quote(v)}\n" for k, v in settings_to_env(settings).items())
    try:
        if not paths.runtime_env.exists() or paths.runtime_env.read_text("utf-8") != env:
            write_private(paths.runtime_env, env)
    except OSError as exc:
        raise SupervisorError(f"cannot write {paths.runtime_env}: {exc}") from None


def dotenv_quote(value: str) -> str:
    # python-dotenv reads single-quoted values literally (no escapes, no expansion).
    if "'" in value or "\n" in value:
        raise SupervisorError("a setting holds a quote or newline and cannot be passed on")
    return f"'{value}'"


def save_deferred(paths: StatePaths, programs: list[str]) -> None:
    path = paths.home / "deferred.json"
    if programs:
        write_private(path, json.dumps(sorted(programs)))
    else:
        path.unlink(missing_ok=True)


def deferred(paths: StatePaths) -> set[str]:
    """Programs left on an old entry by earlier applies (see apply.ApplyResult.deferred)."""
    try:
        return set(json.loads((paths.home / "deferred.json").read_text("utf-8")))
    except (OSError, ValueError, TypeError):
        return set()
