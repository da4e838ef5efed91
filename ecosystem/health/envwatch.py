"""`runtime.env` as the health monitor reads it: the commands that change what runs
rewrite it, and a hand edit can break it. A monitor that exited on a bad value would be
restarted by supervisord until FATAL, and then nothing restarts crashed runners; so the
monitor keeps running on the last good settings (those of the file without the bad
variables, which take their defaults, when it never read good ones), says what is wrong
once per change of the file, and shows it in `monitor.json` for `zapvisor doctor`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecosystem.errors import ConfigError
from ecosystem.runtime_env import read_runtime_settings, runtime_settings, runtime_values
from ecosystem.settings import Settings
from ecosystem.settings_check import SettingsInvalid

log = logging.getLogger("health")


@dataclass(frozen=True)
class EnvProblem:
    variables: tuple[str, ...]
    """The variables whose values are wrong (empty when the file itself is: missing)."""
    message: str
    """Why, naming the variable, never a secret's value (SettingsInvalid.describe)."""
    runs_on: str
    """What the monitor runs on meanwhile."""

    def to_json(self) -> dict[str, Any]:
        return {"variables": list(self.variables), "message": self.message, "runs_on": self.runs_on}


def bad_variables(values: dict[str, str], home: Path) -> tuple[str, ...]:
    try:
        runtime_settings(values, home)
    except SettingsInvalid as exc:
        return tuple(dict.fromkeys(p.var for p in exc.problems))
    return ()


def fallback(values: dict[str, str], home: Path, bad: tuple[str, ...]) -> Settings:
    """The file's settings without the bad variables (their defaults); only the defaults
    when that still fails (a rule across variables)."""
    try:
        return runtime_settings({k: v for k, v in values.items() if k not in bad}, home)
    except SettingsInvalid:
        return runtime_settings({}, home)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


class RuntimeEnv:
    def __init__(self, env_file: Path, home: Path) -> None:
        self.env_file = env_file
        self.home = home
        self.mtime: float | None = None
        self.settings: Settings | None = None
        """The last good settings (or the fallback while there never were any)."""
        self.good = False
        self.problem: EnvProblem | None = None

    def changed(self) -> bool:
        return _mtime(self.env_file) != self.mtime

    def current(self) -> Settings:
        return self.settings if self.settings is not None else self.load()

    def load(self) -> Settings:
        """Read the file again; never raises for a bad file (see the module's doc)."""
        self.mtime = _mtime(self.env_file)
        try:
            settings = read_runtime_settings(self.env_file, self.home)
        except ConfigError as exc:
            values = runtime_values(self.env_file)
            bad = bad_variables(values, self.home)
            if self.settings is None or not self.good:
                self.settings = fallback(values, self.home, bad)
                runs_on = f"the defaults for {', '.join(bad)}" if bad else "the defaults"
            else:
                runs_on = "the last good settings"
            self.problem = EnvProblem(bad, str(exc), runs_on)
            log.error("%s; the monitor runs on %s until it is fixed", exc, runs_on)
            return self.settings
        if self.problem is not None:
            log.warning("%s is valid again", self.env_file)
        self.problem = None
        self.settings, self.good = settings, True
        return settings
